package ocr

import (
	"image"
	"image/draw"

	"github.com/chartscan/chartscan"
)

// Barcode is a barcode decoded on a page.
type Barcode struct {
	Format string        // "CODE_128", "CODE_39", "QR_CODE", "DATA_MATRIX", "PDF_417"
	Text   string        // the decoded value, UTF-8
	Box    chartscan.Box // where it was found, in the page image's pixels
}

// DecodeBarcodes finds Code 128, Code 39, QR, Data Matrix and PDF417 barcodes anywhere
// on a page image with zxing-cpp (see zxing.go). One pass finds every symbol on the page,
// turned any way and at any size; each value is reported once.
func DecodeBarcodes(img image.Image) []Barcode {
	g := toGray(img)
	// Most pages have no barcode; the hardest search (every scan line, rotated, and down
	// a pyramid for a large or fax-blurred symbol) costs 60–80 ms on a 300 dpi letter
	// page, a small share of the OCR beside it.
	found, err := zxingRead(g, zxingHints{harder: true, rotate: true, downscale: true})
	if err != nil {
		// zxing-cpp fails only when out of memory; the page is still read, without
		// barcodes, like a page that has none.
		return nil
	}
	var out []Barcode
	seen := map[string]bool{}
	for _, b := range found {
		key := b.Format + "\x00" + b.Text
		if seen[key] {
			continue
		}
		seen[key] = true
		b.Box.X0, b.Box.X1 = b.Box.X0+g.Rect.Min.X, b.Box.X1+g.Rect.Min.X
		b.Box.Y0, b.Box.Y1 = b.Box.Y0+g.Rect.Min.Y, b.Box.Y1+g.Rect.Min.Y
		out = append(out, b)
	}
	return out
}

// toGray returns img as an *image.Gray whose rows zxing-cpp can read in place, copying
// only an image of another kind.
func toGray(img image.Image) *image.Gray {
	if g, ok := img.(*image.Gray); ok {
		return g
	}
	b := img.Bounds()
	g := image.NewGray(b)
	draw.Draw(g, b, img, b.Min, draw.Src)
	return g
}
