package ocr

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var cerReport = flag.String("cer-report", "", "directory prepared by deploy/bench-ocr.sh: print the CER table")

// TestCERReport prints make bench-ocr's table: for each page of DIR/pages.tsv (name,
// image, ground truth), the character error rate of chartscan's Engine, of plain
// `tesseract` (DIR/NAME.tesseract.txt) and of `ocrmypdf --rotate-pages --deskew`
// (DIR/NAME.ocrmypdf.txt), and their means. It runs only with -cer-report.
func TestCERReport(t *testing.T) {
	if *cerReport == "" {
		t.Skip("run by make bench-ocr")
	}
	f, err := os.Open(filepath.Join(*cerReport, "pages.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e := NewEngine(1, "eng")
	defer e.Close()
	var sum [3]float64
	var cnt [3]int
	var out strings.Builder
	fmt.Fprintf(&out, "%-34s %10s %10s %10s\n", "page", "chartscan", "tesseract", "ocrmypdf")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) != 3 {
			continue
		}
		name, img, gtPath := fs[0], fs[1], fs[2]
		gt := string(readFile(t, gtPath))
		var pages []PageImage
		if _, err := Split(context.Background(), img, DefaultLimits, func(p PageImage) error { pages = append(pages, p); return nil }); err != nil {
			t.Fatal(name, err)
		}
		r, err := e.Read(context.Background(), pages[0].Data, pages[0].DPI)
		if err != nil {
			t.Fatal(name, err)
		}
		cols := []string{}
		for i, text := range []*string{&r.Text, sidecar(*cerReport, name, "tesseract"), sidecar(*cerReport, name, "ocrmypdf")} {
			if text == nil {
				cols = append(cols, "—")
				continue
			}
			c := cer(*text, gt)
			sum[i] += c
			cnt[i]++
			cols = append(cols, fmt.Sprintf("%.3f", c))
		}
		fmt.Fprintf(&out, "%-34s %10s %10s %10s\n", name, cols[0], cols[1], cols[2])
	}
	var means []string
	for i := range sum {
		if cnt[i] == 0 {
			means = append(means, "—")
			continue
		}
		means = append(means, fmt.Sprintf("%.3f", sum[i]/float64(cnt[i])))
	}
	fmt.Fprintf(&out, "%-34s %10s %10s %10s\n", "mean", means[0], means[1], means[2])
	fmt.Print(out.String())
}

func sidecar(dir, name, tool string) *string {
	b, err := os.ReadFile(filepath.Join(dir, name+"."+tool+".txt"))
	if err != nil {
		return nil
	}
	s := string(b)
	return &s
}
