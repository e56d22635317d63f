package ocr

// #cgo CXXFLAGS: -std=c++17
// #cgo LDFLAGS: -lZXing
// #include <stdlib.h>
// #include "zxing.h"
import "C"

import (
	"errors"
	"image"
	"unsafe"

	"github.com/chartscan/chartscan"
)

// zxingFormats are ZXing::BarcodeFormat's bits for the symbologies chartscan reads, named
// as gozxing named them (the names Barcode.Format has always had).
var zxingFormats = map[C.int]string{
	1 << 2:  "CODE_39",
	1 << 4:  "CODE_128",
	1 << 7:  "DATA_MATRIX",
	1 << 12: "PDF_417",
	1 << 13: "QR_CODE",
}

// zxingHints are the DecodeHints of one zxing-cpp pass.
type zxingHints struct {
	harder, rotate, downscale bool
}

// zxingRead finds every barcode in g with zxing-cpp. Boxes are in g's pixels.
func zxingRead(g *image.Gray, h zxingHints) ([]Barcode, error) {
	w, ht := g.Rect.Dx(), g.Rect.Dy()
	if w <= 0 || ht <= 0 {
		return nil, nil
	}
	var formats C.int
	for f := range zxingFormats {
		formats |= f
	}
	var out *C.cs_barcode
	n := C.cs_read_barcodes((*C.uchar)(unsafe.Pointer(&g.Pix[0])), C.int(w), C.int(ht), C.int(g.Stride), formats,
		cbool(h.harder), cbool(h.rotate), cbool(h.downscale), &out)
	if n < 0 {
		return nil, errors.New("zxing-cpp: barcode decoding failed")
	}
	defer C.cs_free_barcodes(out, n)
	var bs []Barcode
	for _, r := range unsafe.Slice(out, int(n)) {
		b := Barcode{Format: zxingFormats[r.format], Text: C.GoStringN(r.text, r.len)}
		b.Box = chartscan.Box{X0: int(r.x[0]), Y0: int(r.y[0]), X1: int(r.x[0]) + 1, Y1: int(r.y[0]) + 1}
		for i := range 4 {
			x, y := int(r.x[i]), int(r.y[i])
			b.Box.X0, b.Box.Y0 = min(b.Box.X0, x), min(b.Box.Y0, y)
			b.Box.X1, b.Box.Y1 = max(b.Box.X1, x+1), max(b.Box.Y1, y+1)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
