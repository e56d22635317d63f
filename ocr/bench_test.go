package ocr

import (
	"context"
	"testing"
)

// BenchmarkSplitScannedPDF measures taking the page images out of a scanned PDF: work
// that competes with OCR for the same cores.
func BenchmarkSplitScannedPDF(b *testing.B) {
	for b.Loop() {
		n, err := Split(context.Background(), "../testdata/charts/chart-001.pdf", DefaultLimits, func(PageImage) error { return nil })
		if err != nil || n != 4 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/4, "ms/page")
}
