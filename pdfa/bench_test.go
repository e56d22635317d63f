package pdfa

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/chartscan/chartscan/ocr"
)

// BenchmarkWrite builds the PDF of the three sample chart pages (1-bit 300 dpi scans,
// 75–150 words each, embedded as stored) and reports milliseconds per page and that as a
// share of the pages' OCR time, which the issue caps at 5%.
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

// BenchmarkWriteDecoded is the cost of a full letter page at 300 dpi whose stored
// encoding PDF cannot carry as it is, so it is decoded and compressed again: G4 in
// strips (as many scanners write it), and Deflate TIFFs in grey and in colour, decoded
// by golang.org/x/image/tiff.
func BenchmarkWriteDecoded(b *testing.B) {
	var page ocr.PageImage
	if _, err := ocr.Split(context.Background(), "../testdata/charts/chart-001.pdf", ocr.DefaultLimits, func(p ocr.PageImage) error {
		if p.Number == 1 {
			page = p
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	src, _, err := image.Decode(bytes.NewReader(page.Data))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	in := filepath.Join(dir, "in.png")
	if err := os.WriteFile(in, page.Data, 0o600); err != nil {
		b.Fatal(err)
	}
	tool(b, "imagemagick", "convert", in, "-type", "bilevel", "-compress", "Group4", filepath.Join(dir, "g4.tif"))
	tool(b, "libtiff-tools", "tiffcp", "-c", "g4", "-r", "64", filepath.Join(dir, "g4.tif"), filepath.Join(dir, "strips.tif"))
	strips, err := os.ReadFile(filepath.Join(dir, "strips.tif"))
	if err != nil {
		b.Fatal(err)
	}
	grey := image.NewGray(src.Bounds())
	draw.Draw(grey, grey.Rect, src, image.Point{}, draw.Src)
	colour := image.NewRGBA(src.Bounds())
	draw.Draw(colour, colour.Rect, src, image.Point{}, draw.Src)
	for i := range colour.Pix {
		if i%4 == 0 && colour.Pix[i] == 0 {
			colour.Pix[i] = 40 // dark red ink, so the page stays colour
		}
	}
	encode := func(img image.Image) []byte {
		var buf bytes.Buffer
		if err := tiff.Encode(&buf, img, &tiff.Options{Compression: tiff.Deflate}); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"g4-strips", strips}, {"grey-deflate-tiff", encode(grey)}, {"rgb-deflate-tiff", encode(colour)}} {
		b.Run(c.name, func(b *testing.B) {
			p := []Page{{Image: c.data, ImageType: "image/tiff", DPI: page.DPI}}
			for b.Loop() {
				if err := Write(io.Discard, Meta{}, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/1e6, "ms/page")
		})
	}
}
