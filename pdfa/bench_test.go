package pdfa

import (
	"io"
	"testing"
)

// BenchmarkWrite builds the PDF of the three sample chart pages (1-bit 300 dpi scans,
// 75–150 words each) and reports milliseconds per page and that as a share of the
// pages' OCR time, which the issue caps at 5%.
func BenchmarkWrite(b *testing.B) {
	cps := chartPages(b)
	pages := pagesOf(cps)
	meta := chartMeta(cps)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Write(io.Discard, meta, pages); err != nil {
			b.Fatal(err)
		}
	}
	perPage := float64(b.Elapsed()) / float64(b.N) / float64(len(pages))
	b.ReportMetric(perPage/1e6, "ms/page")
	b.ReportMetric(100*perPage/(float64(fixtureOCR)/float64(len(pages))), "%ocr")
}
