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
// on a page image with zxing-cpp (see zxing.go). Each value is reported once.
//
// Two passes, the second only when the first finds nothing: a quick one over the whole
// image at full resolution (a sample of the scan lines, each symbol turned any way) —
// what a printed label or cover sheet needs —, then one down a pyramid of smaller copies
// for a large or fax-blurred symbol. On a large page (a letter page at 200 dpi or more)
// the second pass starts from a half-size copy and samples scan lines too; on a small
// image (a crop, a label) it is the hardest search, every scan line at every size. On a
// 300 dpi letter page the two passes cost about half of what the hardest search over
// the full page did, which was 10–15% of the page's OCR time.
func DecodeBarcodes(img image.Image) []Barcode {
	g := toGray(img)
	found, err := zxingRead(g, zxingHints{rotate: true})
	if err == nil && len(found) == 0 {
		hard, scale, harder := g, 1, true
		if g.Rect.Dx()*g.Rect.Dy() > halveOver {
			hard, scale, harder = halve(g), 2, false
		}
		found, err = zxingRead(hard, zxingHints{harder: harder, rotate: true, downscale: true})
		for i := range found {
			b := &found[i].Box
			b.X0, b.Y0, b.X1, b.Y1 = b.X0*scale, b.Y0*scale, b.X1*scale, b.Y1*scale
		}
	}
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

// halveOver is the page size in pixels (a 200 dpi letter page holds 3.7 million) above
// which the second pass runs on a half-size copy.
const halveOver = 4_000_000

// halve returns g at half its width and height, each pixel the mean of four.
func halve(g *image.Gray) *image.Gray {
	w, h := g.Rect.Dx()/2, g.Rect.Dy()/2
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		r0 := g.Pix[(2*y)*g.Stride:]
		r1 := g.Pix[(2*y+1)*g.Stride:]
		d := out.Pix[y*out.Stride:]
		for x := range w {
			d[x] = uint8((int(r0[2*x]) + int(r0[2*x+1]) + int(r1[2*x]) + int(r1[2*x+1]) + 2) / 4)
		}
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
