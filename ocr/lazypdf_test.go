package ocr

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/chartscan/chartscan/synth"
)

// splitBoth splits path once with pdfcpu's reader and once page by page (lazyPDF) and
// returns both results.
func splitBoth(t *testing.T, path string) (whole, lazy []PageImage) {
	t.Helper()
	run := func(minPages int, minBytes int64) []PageImage {
		oldPages, oldBytes := lazySplitMinPages, lazySplitMinBytes
		lazySplitMinPages, lazySplitMinBytes = minPages, minBytes
		defer func() { lazySplitMinPages, lazySplitMinBytes = oldPages, oldBytes }()
		var pages []PageImage
		n, err := Split(context.Background(), path, DefaultLimits, func(p PageImage) error {
			pages = append(pages, p)
			return nil
		})
		if err != nil || n != len(pages) {
			t.Fatalf("split %s: %d pages, %d emitted, %v", filepath.Base(path), n, len(pages), err)
		}
		return pages
	}
	return run(1<<30, 1<<62), run(0, 0)
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestLazySplitMatchesPdfcpu: a long PDF split page by page gives exactly the pages
// pdfcpu's reader gives — the same bytes, sizes, resolutions and kinds — whatever wrote
// it: poppler's pdfunite (a classic cross-reference table), pdfcpu (an xref stream and
// object streams), a later incremental update of a page (the /Prev chain, the newer
// object winning), and pages that are not plain scans (text, drawn by pdftoppm).
func TestLazySplitMatchesPdfcpu(t *testing.T) {
	dir := t.TempDir()
	charts, _ := filepath.Glob("../testdata/charts/chart-*.pdf")
	if len(charts) == 0 {
		t.Fatal("no sample charts")
	}
	// Codecs of scanners: grey JPEG, Group 4 through libtiff's tiff2pdf, and a page of
	// text from Ghostscript, which is no scan.
	g := image.NewGray(image.Rect(0, 0, 1275, 1650))
	for i := range g.Pix {
		g.Pix[i] = byte(255 - i%97)
	}
	var jpeg bytes.Buffer
	if err := synth.WritePDF(&jpeg, []*image.Gray{g}, 150, synth.GreyJPEG); err != nil {
		t.Fatal(err)
	}
	jpegPDF := filepath.Join(dir, "jpeg.pdf")
	os.WriteFile(jpegPDF, jpeg.Bytes(), 0o644)
	g4tif, g4PDF := filepath.Join(dir, "g4.tif"), filepath.Join(dir, "g4.pdf")
	tool(t, "convert", "-size", "850x1100", "xc:white", "-fill", "black", "-draw", "rectangle 100,100 400,300",
		"-units", "PixelsPerInch", "-density", "100", "-monochrome", "-compress", "Group4", g4tif)
	tool(t, "tiff2pdf", "-o", g4PDF, g4tif)
	ps, textPDF := filepath.Join(dir, "text.ps"), filepath.Join(dir, "text.pdf")
	os.WriteFile(ps, []byte("%!PS\n/Helvetica findfont 24 scalefont setfont 72 720 moveto (Not a scan) show showpage\n"), 0o644)
	tool(t, "gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=letter", "-o", textPDF, ps)

	unite := filepath.Join(dir, "unite.pdf")
	tool(t, "pdfunite", append(append(append([]string{}, charts...), jpegPDF, g4PDF, textPDF, charts[0]), unite)...)
	merged := filepath.Join(dir, "pdfcpu.pdf")
	if err := api.MergeCreateFile([]string{unite, charts[1]}, merged, false, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(merged)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("/XRef")) || !bytes.Contains(b, []byte("/ObjStm")) {
		t.Fatal("pdfcpu's merge wrote no xref stream or no object stream; the case is not covered")
	}
	updated := filepath.Join(dir, "updated.pdf")
	os.WriteFile(updated, incrementalUpdate(t, unite), 0o644)

	for _, path := range []string{unite, merged, updated} {
		whole, lazy := splitBoth(t, path)
		if len(whole) != len(lazy) {
			t.Fatalf("%s: %d pages by pdfcpu's reader, %d page by page", filepath.Base(path), len(whole), len(lazy))
		}
		kinds := map[string]int{}
		for i := range whole {
			w, l := whole[i], lazy[i]
			if !bytes.Equal(w.Data, l.Data) {
				t.Errorf("%s page %d: other bytes page by page (%s %d bytes, was %s %d bytes)", filepath.Base(path), i+1, l.Type, len(l.Data), w.Type, len(w.Data))
			}
			w.Data, l.Data = nil, nil
			if fmt.Sprint(w) != fmt.Sprint(l) {
				t.Errorf("%s page %d: %+v page by page, %+v by pdfcpu's reader", filepath.Base(path), i+1, l, w)
			}
			kinds[fmt.Sprintf("%s rasterized=%v", w.Type, w.Rasterized)]++
		}
		// Flate and Group 4 pages as TIFFs, JPEG as it is, the text page drawn.
		for _, want := range []string{"image/tiff rasterized=false", "image/jpeg rasterized=false", "image/png rasterized=true"} {
			if kinds[want] == 0 {
				t.Errorf("%s: no %s page among %v; the case is not covered", filepath.Base(path), want, kinds)
			}
		}
		if path == updated && (whole[0].DPI != 600 || lazy[0].DPI != 600) {
			t.Errorf("the update halving page 1 was not read: %d dpi, %d dpi page by page, want 600", whole[0].DPI, lazy[0].DPI)
		}
	}
}

// incrementalUpdate appends an incremental update to the PDF at path that gives its
// first page a media box of half the size (the scan then has twice the resolution), as
// an editor's "save" appends changed objects.
func incrementalUpdate(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n(\d+) 0 obj\s*(<<\s*/Type\s*/Page\b.*?)endobj`).FindSubmatchIndex(b)
	if m == nil {
		t.Fatal("no page object found")
	}
	nr, dict := string(b[m[2]:m[3]]), strings.TrimSpace(string(b[m[4]:m[5]]))
	prev := regexp.MustCompile(`startxref\s+(\d+)\s+%%EOF\s*$`).FindSubmatch(b)
	size := regexp.MustCompile(`/Size (\d+)`).FindSubmatch(b)
	root := regexp.MustCompile(`/Root (\d+ 0 R)`).FindSubmatch(b)
	if prev == nil || size == nil || root == nil {
		t.Fatal("the PDF's trailer is not as expected")
	}
	var out bytes.Buffer
	out.Write(b)
	off := out.Len()
	half := regexp.MustCompile(`/MediaBox\s*\[[^\]]*\]`).ReplaceAllString(dict, "/MediaBox [0 0 306 396]")
	if half == dict {
		t.Fatal("the page has no media box of its own")
	}
	fmt.Fprintf(&out, "%s 0 obj\n%s\nendobj\n", nr, half)
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 1\n0000000000 65535 f \n%s 1\n%010d 00000 n \ntrailer\n<< /Size %s /Root %s /Prev %s >>\nstartxref\n%d\n%%%%EOF\n",
		nr, off, size[1], root[1], prev[1], xref)
	return out.Bytes()
}

// TestLazySplitLeavesADamagedFileToPdfcpu: a long PDF cut short (no cross-reference
// section at its end) is not split page by page; pdfcpu's reader then says what a
// clerk reads about a damaged file.
func TestLazySplitLeavesADamagedFileToPdfcpu(t *testing.T) {
	b, err := os.ReadFile("../testdata/charts/chart-001.pdf")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.pdf")
	os.WriteFile(path, b[:len(b)*2/3], 0o644)
	old := lazySplitMinPages
	lazySplitMinPages = 0
	defer func() { lazySplitMinPages = old }()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, done, _ := splitPDFLazily(context.Background(), f, path, DefaultLimits, func(PageImage) error { return nil }); done {
		t.Error("a file cut short was split page by page")
	}
	if _, err := Split(context.Background(), path, DefaultLimits, func(PageImage) error { return nil }); err == nil || !strings.Contains(err.Error(), "damaged or incomplete") {
		t.Errorf("Split of a file cut short: %v, want the damaged-file message", err)
	}
}

// TestGroup4PagesPassThrough: a CCITT Group 4 page as tiff2pdf writes it, of either
// polarity, is handed over as a TIFF of the same data that shows the page as the
// scanner's TIFF does.
func TestGroup4PagesPassThrough(t *testing.T) {
	dir := t.TempDir()
	for _, polarity := range []string{"min-is-white", "min-is-black"} {
		tif, pdf := filepath.Join(dir, polarity+".tif"), filepath.Join(dir, polarity+".pdf")
		tool(t, "convert", "-size", "850x1100", "xc:white", "-fill", "black", "-draw", "rectangle 100,100 400,300",
			"-draw", "circle 600,800 650,900", "-units", "PixelsPerInch", "-density", "100", "-monochrome",
			"-define", "quantum:polarity="+polarity, "-compress", "Group4", tif)
		tool(t, "tiff2pdf", "-o", pdf, tif)
		var got []PageImage
		if _, err := Split(context.Background(), pdf, DefaultLimits, func(p PageImage) error {
			got = append(got, p)
			return nil
		}); err != nil || len(got) != 1 {
			t.Fatalf("%s: %d pages, %v", polarity, len(got), err)
		}
		if got[0].Type != "image/tiff" || got[0].Rasterized || got[0].DPI != 100 {
			t.Fatalf("%s: %+v, want the Group 4 data as a 100-dpi TIFF", polarity, got[0])
		}
		orig, err := os.ReadFile(tif)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := image.Decode(bytes.NewReader(orig))
		if err != nil {
			t.Fatal(err)
		}
		have, _, err := image.Decode(bytes.NewReader(got[0].Data))
		if err != nil {
			t.Fatalf("%s: decode the page: %v", polarity, err)
		}
		diff := 0
		for y := range 1100 {
			for x := range 850 {
				if color.GrayModel.Convert(want.At(x, y)) != color.GrayModel.Convert(have.At(x, y)) {
					diff++
				}
			}
		}
		if diff != 0 {
			t.Errorf("%s: %d pixels differ from the scanner's TIFF", polarity, diff)
		}
	}
}
