package ocr

import (
	"context"
	"testing"
	"time"
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

// The steps Engine.Read adds before OCR, each on a dense 300 dpi letter page (a G4 UNLV
// magazine scan, 2560×3300) and its 3°-skewed copy, against OCR itself: they must stay
// small beside it.
func benchPage(b testing.TB, file string) ([]byte, int) {
	var page PageImage
	if _, err := Split(context.Background(), corpus+file, DefaultLimits, func(p PageImage) error { page = p; return nil }); err != nil {
		b.Fatal(err)
	}
	return page.Data, page.DPI
}

func msPerPage(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
}

// BenchmarkStepNormalize: decode, scale into the dpi window, measure ink (the blank check).
func BenchmarkStepNormalize(b *testing.B) {
	img, dpi := benchPage(b, "tesseract-test/8087_054.3B.tif")
	for b.Loop() {
		pg, err := normalize(img, dpi, DefaultOptions)
		if err != nil {
			b.Fatal(err)
		}
		pg.free()
	}
	msPerPage(b)
}

// BenchmarkStepOrientDeskew: Tesseract OSD, then skew measured and corrected (3.1°).
func BenchmarkStepOrientDeskew(b *testing.B) {
	img, dpi := benchPage(b, "derived/8087_054.3B_skew3deg.tif")
	osd, err := newOSD()
	if err != nil {
		b.Fatal(err)
	}
	defer freeOSD(osd)
	var el time.Duration
	for b.Loop() {
		pg, err := normalize(img, dpi, DefaultOptions)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := pg.orient(osd, DefaultOptions); err != nil {
			b.Fatal(err)
		}
		if err := pg.deskew(DefaultOptions); err != nil || !pg.deskewed {
			b.Fatal(err, pg.deskewed)
		}
		el += time.Since(t0)
		pg.free()
	}
	b.ReportMetric(float64(el.Microseconds())/1000/float64(b.N), "ms/page")
}

// BenchmarkStepBarcodes: zxing-cpp over the whole page (no barcode: the common, slowest case).
func BenchmarkStepBarcodes(b *testing.B) {
	img, dpi := benchPage(b, "tesseract-test/8087_054.3B.tif")
	pg, err := normalize(img, dpi, DefaultOptions)
	if err != nil {
		b.Fatal(err)
	}
	g := pg.img.gray()
	pg.free()
	for b.Loop() {
		DecodeBarcodes(g)
	}
	msPerPage(b)
}

// BenchmarkStepEncodeUpright: the image handed back when a page was turned or straightened.
func BenchmarkStepEncodeUpright(b *testing.B) {
	img, dpi := benchPage(b, "derived/8087_054.3B_skew3deg.tif")
	pg, err := normalize(img, dpi, DefaultOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer pg.free()
	if err := pg.deskew(DefaultOptions); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := pg.img.encodeUpright(); err != nil {
			b.Fatal(err)
		}
	}
	msPerPage(b)
}

// BenchmarkRead: the whole of Engine.Read, OCR included, on the skewed page.
func BenchmarkRead(b *testing.B) {
	img, dpi := benchPage(b, "derived/8087_054.3B_skew3deg.tif")
	e := NewEngine(1, "eng")
	defer e.Close()
	for b.Loop() {
		if _, err := e.Read(context.Background(), img, dpi); err != nil {
			b.Fatal(err)
		}
	}
	msPerPage(b)
}
