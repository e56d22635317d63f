#!/usr/bin/env bash
# deploy/bench-ocr.sh — character error rate of chartscan's OCR against plain Tesseract
# and OCRmyPDF (--rotate-pages --deskew, sidecar text) on the corpus pages that have
# human ground truth. Pages come from testdata/corpus; set CORPUS=/path/to/corpus (a copy
# of the shared public corpus, same layout) to add the pages not committed here.
# CER = edit distance / ground-truth length, on whitespace-normalized text.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1
command -v ocrmypdf >/dev/null || { echo "bench-ocr: ocrmypdf is missing (make deps)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gt_of() { # the ground truth of a page: its own .txt, or its source's for a derived copy
  case "$(basename "$1")" in
    phototest*) echo tesseract-test/phototest.txt ;;
    eurotext*) echo tesseract-test/eurotext.txt ;;
    8087_054.3B*) echo tesseract-test/8087_054.3B.txt ;;
    8071_093.3B*) echo tesseract-test/8071_093.3B.txt ;;
  esac
}
pages=(tesseract-test/phototest.tif tesseract-test/phototest-rotated-L.png tesseract-test/phototest-rotated-R.png
       tesseract-test/phototest-rotated-180.png tesseract-test/phototestrot.tif tesseract-test/eurotext.tif
       tesseract-test/8087_054.3B.tif tesseract-test/8071_093.3B.tif
       derived/phototest_skew-7deg.png derived/8087_054.3B_skew3deg.tif
       derived/8087_054.3B_150dpi.png derived/8087_054.3B_100dpi.png derived/8071_093.3B_impulse_noise.png)
n=0
for p in "${pages[@]}"; do
  src=""
  for root in testdata/corpus "${CORPUS:-}"; do
    [ -n "$root" ] && [ -f "$root/$p" ] && { src="$root/$p"; gt="$root/$(gt_of "$p")"; break; }
  done
  [ -n "$src" ] || { echo "bench-ocr: $p not in testdata/corpus (set CORPUS to include it)" >&2; continue; }
  name=$(basename "$p")
  printf "%s\t%s\t%s\n" "$name" "$(realpath "$src")" "$(realpath "$gt")" >>"$work/pages.tsv"
  tesseract "$src" "$work/$name.tesseract" >/dev/null 2>&1 || echo "bench-ocr: tesseract failed on $p" >&2
  # OCRmyPDF reads an image as a one-page PDF; one without a resolution is given 300 dpi.
  ocrmypdf -q --rotate-pages --deskew --sidecar "$work/$name.ocrmypdf.txt" "$src" "$work/$name.pdf" 2>"$work/ocrmypdf.log" ||
    ocrmypdf -q --image-dpi 300 --rotate-pages --deskew --sidecar "$work/$name.ocrmypdf.txt" "$src" "$work/$name.pdf" 2>"$work/ocrmypdf.log" ||
    echo "bench-ocr: ocrmypdf failed on $p" >&2
  n=$((n + 1))
done
echo "bench-ocr: $n pages"
go test -count=1 -v -run '^TestCERReport$' ./ocr/ -args -cer-report "$work" | grep -v '^ok\|^PASS\|^=== RUN\|^--- PASS'
