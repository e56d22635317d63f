package ocr

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// TestGrayOfABilevelPage: the grey copy barcodes are read from shows a 1-bit page's
// black as 0 and white as 255 at every pixel, also past the last whole byte of a row.
func TestGrayOfABilevelPage(t *testing.T) {
	const w, h = 29, 7 // 3 whole bytes and 5 pixels a row
	src := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.Black, color.White})
	for y := range h {
		for x := range w {
			if (x*7+y*3)%5 < 2 {
				src.SetColorIndex(x, y, 1)
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, src); err != nil {
		t.Fatal(err)
	}
	p, err := readPix(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	defer p.free()
	if d := p.depth(); d != 1 {
		t.Fatalf("Leptonica read the page at %d bits, want 1", d)
	}
	g := p.gray()
	for y := range h {
		for x := range w {
			want := uint8(0)
			if src.ColorIndexAt(x, y) == 1 {
				want = 255
			}
			if got := g.GrayAt(x, y).Y; got != want {
				t.Fatalf("pixel %d,%d = %d, want %d", x, y, got, want)
			}
		}
	}
}
