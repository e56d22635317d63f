package ocr

import (
	"image"
	"image/draw"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/datamatrix"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	xdraw "golang.org/x/image/draw"

	"github.com/chartscan/chartscan"
)

// Barcode is a barcode decoded on a page.
type Barcode struct {
	Format string        // "CODE_128", "CODE_39", "QR_CODE", "DATA_MATRIX"
	Text   string        // the decoded value
	Box    chartscan.Box // where it was found, in the page image's pixels
}

// barcodeReaders are tried in turn on each image. gozxing (v0.1.1) has no PDF417
// reader.
func barcodeReaders() []gozxing.Reader {
	return []gozxing.Reader{
		oned.NewCode128Reader(),
		oned.NewCode39Reader(),
		qrcode.NewQRCodeReader(),
		datamatrix.NewDataMatrixReader(),
	}
}

// DecodeBarcodes finds Code 128, Code 39, QR and Data Matrix barcodes anywhere on a page
// image. It tries the page at full size and at a half and a quarter of it (a barcode
// printed large, or blurred by a fax, reads better smaller), and again with the page
// split into a 2×2 grid of overlapping tiles so that two barcodes on one page are both
// found. Each value is reported once.
func DecodeBarcodes(img image.Image) []Barcode {
	var out []Barcode
	seen := map[string]bool{}
	add := func(r *gozxing.Result, scale float64, off image.Point) {
		text := barcodeText(r)
		key := r.GetBarcodeFormat().String() + "\x00" + text
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, Barcode{Format: r.GetBarcodeFormat().String(), Text: text, Box: resultBox(r, scale, off)})
	}
	b := img.Bounds()
	scales := []float64{1, 2, 3} // a small crop (a phone photo of a label) reads better enlarged
	page := b.Dx() > 1200 || b.Dy() > 1200
	if page {
		// Most pages have no barcode, so the full-size pass, the costliest, is made
		// without TRY_HARDER; the half-size pass, with it, finds what a scanner prints.
		scales = []float64{0.5, 1, 0.25}
	}
	for _, s := range scales {
		if s > 1 && len(out) > 0 {
			break
		}
		im := img
		if s != 1 {
			im = resize(img, s)
		}
		decodeAll(im, !(page && s == 1), !page || s < 0.5, func(r *gozxing.Result) { add(r, s, b.Min) })
	}
	if len(out) == 0 && b.Dx() <= 1200 && b.Dy() <= 1200 {
		// A crop cut to the symbol's edge lacks the quiet zone finders need: add one.
		m := max(16, b.Dx()/5, b.Dy()/5)
		im := pad(img, m)
		for _, s := range []float64{1, 2} {
			if s != 1 {
				im = resize(im, s)
			}
			decodeAll(im, true, true, func(r *gozxing.Result) { add(r, s, b.Min.Sub(image.Pt(m, m))) })
			if len(out) > 0 {
				break
			}
		}
	}
	if len(out) > 0 && b.Dx() > 1200 && b.Dy() > 1200 {
		// Tiles find a second barcode that the whole page's decode hid behind the first
		// (each reader returns one result an image).
		hw, hh := b.Dx()*6/10, b.Dy()*6/10
		for _, o := range []image.Point{{0, 0}, {b.Dx() - hw, 0}, {0, b.Dy() - hh}, {b.Dx() - hw, b.Dy() - hh}} {
			r := image.Rect(o.X, o.Y, o.X+hw, o.Y+hh).Add(b.Min)
			t := resize(crop(img, r), 0.5)
			decodeAll(t, true, false, func(res *gozxing.Result) { add(res, 0.5, r.Min) })
		}
	}
	return out
}

// decodeAll tries every reader on im, binarized locally (Hybrid, for uneven light) and,
// with global, for a reader that found nothing, globally (for a small, low-contrast crop;
// too slow for a whole page).
func decodeAll(im image.Image, harder, global bool, found func(*gozxing.Result)) {
	src := gozxing.NewLuminanceSourceFromImage(im)
	hybrid, err1 := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	globalBmp, err2 := gozxing.NewBinaryBitmap(gozxing.NewGlobalHistgramBinarizer(src))
	if err1 != nil || err2 != nil {
		return
	}
	hints := map[gozxing.DecodeHintType]interface{}{}
	if harder {
		hints[gozxing.DecodeHintType_TRY_HARDER] = true
	}
	for _, rd := range barcodeReaders() {
		bmps := []*gozxing.BinaryBitmap{hybrid}
		if global {
			bmps = append(bmps, globalBmp)
		}
		for _, bmp := range bmps {
			if r, err := rd.Decode(bmp, hints); err == nil && strings.TrimSpace(r.GetText()) != "" {
				found(r)
				break
			}
		}
	}
}

// barcodeText is a result's text as UTF-8: 1-D symbologies carry ISO-8859-1 bytes,
// which gozxing hands back unconverted.
func barcodeText(r *gozxing.Result) string {
	s := r.GetText()
	if utf8.ValidString(s) {
		return s
	}
	rs := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		rs[i] = rune(s[i])
	}
	return string(rs)
}

func resultBox(r *gozxing.Result, scale float64, off image.Point) chartscan.Box {
	pts := r.GetResultPoints()
	if len(pts) == 0 {
		return chartscan.Box{}
	}
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, x1 = math.Min(x0, p.GetX()), math.Max(x1, p.GetX())
		y0, y1 = math.Min(y0, p.GetY()), math.Max(y1, p.GetY())
	}
	return chartscan.Box{X0: off.X + int(x0/scale), Y0: off.Y + int(y0/scale),
		X1: off.X + int(math.Ceil(x1/scale)) + 1, Y1: off.Y + int(math.Ceil(y1/scale)) + 1}
}

func resize(img image.Image, s float64) image.Image {
	b := img.Bounds()
	dst := image.NewGray(image.Rect(0, 0, max(1, int(float64(b.Dx())*s)), max(1, int(float64(b.Dy())*s))))
	xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}

// pad returns img on a white margin of m pixels.
func pad(img image.Image, m int) image.Image {
	b := img.Bounds()
	dst := image.NewGray(image.Rect(0, 0, b.Dx()+2*m, b.Dy()+2*m))
	for i := range dst.Pix {
		dst.Pix[i] = 0xff
	}
	draw.Draw(dst, image.Rect(m, m, m+b.Dx(), m+b.Dy()), img, b.Min, draw.Src)
	return dst
}

func crop(img image.Image, r image.Rectangle) image.Image {
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		return s.SubImage(r)
	}
	dst := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(dst, dst.Bounds(), img, r.Min, draw.Src)
	return dst
}
