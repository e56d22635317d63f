package synth

import (
	"image"
	"math"
	"math/rand/v2"
)

// scan applies the effects of a cheap office scanner to a clean page: skew, grey paper,
// salt-and-pepper noise and a whole-page rotation, in that order.
func scan(img *image.Gray, spec PageSpec, rng *rand.Rand) *image.Gray {
	if spec.Skew != 0 {
		img = skew(img, spec.Skew)
	}
	paper(img)
	if spec.Noise > 0 {
		saltAndPepper(img, min(spec.Noise, 1), rng)
	}
	return rotate(img, spec.Rotate)
}

// skew rotates img by deg degrees counter-clockwise about its centre with bilinear
// sampling; what comes in from outside the page is white.
func skew(src *image.Gray, deg float64) *image.Gray {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.NewGray(b)
	sin, cos := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	at := func(x, y int) float64 {
		if x < 0 || y < 0 || x >= w || y >= h {
			return 255
		}
		return float64(src.Pix[y*src.Stride+x])
	}
	for y := range h {
		dy := float64(y) - cy
		for x := range w {
			dx := float64(x) - cx
			// Inverse map: the source point that lands on (x, y). Image y grows downward,
			// so a counter-clockwise turn on paper is a clockwise one in these axes.
			sx := cos*dx - sin*dy + cx
			sy := sin*dx + cos*dy + cy
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			v := (at(x0, y0)*(1-fx)+at(x0+1, y0)*fx)*(1-fy) + (at(x0, y0+1)*(1-fx)+at(x0+1, y0+1)*fx)*fy
			dst.Pix[y*dst.Stride+x] = uint8(v + 0.5)
		}
	}
	return dst
}

// paper darkens white to the scanner's grey, a little more towards the bottom of the page
// as the lamp of a flatbed falls off.
func paper(img *image.Gray) {
	b := img.Bounds()
	for y := range b.Dy() {
		level := float64(grey.Y) - 6*float64(y)/float64(b.Dy())
		row := img.Pix[y*img.Stride : y*img.Stride+b.Dx()]
		for x, v := range row {
			row[x] = uint8(float64(v)*level/255 + 0.5)
		}
	}
}

// saltAndPepper turns share of the pixels (chosen with replacement) black or white.
func saltAndPepper(img *image.Gray, share float64, rng *rand.Rand) {
	b := img.Bounds()
	n := int(share * float64(b.Dx()*b.Dy()))
	for range n {
		x, y := rng.IntN(b.Dx()), rng.IntN(b.Dy())
		v := uint8(0)
		if rng.IntN(2) == 0 {
			v = 255
		}
		img.Pix[y*img.Stride+x] = v
	}
}

// rotate turns img clockwise by deg, which must be 0, 90, 180 or 270; anything else
// leaves it as is.
func rotate(src *image.Gray, deg int) *image.Gray {
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	var dst *image.Gray
	var to func(x, y int) (int, int)
	switch deg {
	case 90:
		dst = image.NewGray(image.Rect(0, 0, h, w))
		to = func(x, y int) (int, int) { return h - 1 - y, x }
	case 180:
		dst = image.NewGray(image.Rect(0, 0, w, h))
		to = func(x, y int) (int, int) { return w - 1 - x, h - 1 - y }
	case 270:
		dst = image.NewGray(image.Rect(0, 0, h, w))
		to = func(x, y int) (int, int) { return y, w - 1 - x }
	default:
		return src
	}
	for y := range h {
		for x := range w {
			dx, dy := to(x, y)
			dst.Pix[dy*dst.Stride+dx] = src.Pix[y*src.Stride+x]
		}
	}
	return dst
}
