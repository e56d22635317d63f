package web

import (
	"image"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// shrinkGray averages over each target pixel's area: a uniform page stays uniform, a
// checkerboard turns mid grey, an offset sub-image is read from its own bounds.
func TestShrinkGray(t *testing.T) {
	u := image.NewGray(image.Rect(10, 10, 110, 77))
	for i := range u.Pix {
		u.Pix[i] = 200
	}
	d := shrinkGray(u, 33, 17)
	if d.Bounds() != image.Rect(0, 0, 33, 17) {
		t.Fatalf("bounds %v", d.Bounds())
	}
	for i, v := range d.Pix {
		if v != 200 {
			t.Fatalf("a uniform image shrunk: pixel %d is %d, want 200", i, v)
		}
	}
	c := image.NewGray(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			if (x+y)%2 == 0 {
				c.Pix[y*64+x] = 255
			}
		}
	}
	for _, w := range []int{16, 32} {
		for i, v := range shrinkGray(c, w, w).Pix {
			if v < 127 || v > 128 {
				t.Fatalf("a checkerboard shrunk to %d: pixel %d is %d, want mid grey", w, i, v)
			}
		}
	}
	// A black right half of a sub-image: the left target column white, the right black.
	s := image.NewGray(image.Rect(0, 0, 40, 40))
	for y := range 40 {
		for x := range 40 {
			if x < 30 {
				s.Pix[y*40+x] = 255
			}
		}
	}
	sub := s.SubImage(image.Rect(10, 10, 40, 30)).(*image.Gray) // 20 white, 10 black columns
	d = shrinkGray(sub, 3, 2)
	if got := [3]uint8{d.Pix[0], d.Pix[1], d.Pix[2]}; got != [3]uint8{255, 255, 0} {
		t.Errorf("a sub-image shrunk: first row %v, want [255 255 0]", got)
	}
	// Never larger than the source.
	if b := shrinkGray(u, 500, 500).Bounds(); b != image.Rect(0, 0, 100, 67) {
		t.Errorf("shrinking to a larger size gave %v", b)
	}
}

// The screen gets a rendition at most displayWidth wide; the full image stays a URL.
func TestDisplayImageURL(t *testing.T) {
	big := storage.PageDetail{Page: chartscan.Page{DocumentID: "d", Number: 1, Width: 2550, Height: 3300}}
	if u := displayImageURL(big); u != pageImageURL(big, displayWidth) {
		t.Errorf("a 2550 px page is shown as %s", u)
	}
	small := big
	small.Width, small.Height = 1275, 1650
	if u := displayImageURL(small); u != pageImageURL(small, 0) {
		t.Errorf("a 1275 px page is shown as %s", u)
	}
}
