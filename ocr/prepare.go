package ocr

// #cgo LDFLAGS: -llept -ltesseract
// #include "prep.h"
import "C"

import (
	"errors"
	"fmt"
	"image"
	"math"
	"unsafe"
)

// Options tune how a page image is prepared before OCR. The zero value of a field means
// its default (DefaultOptions).
type Options struct {
	TargetDPI int // resolution pages are scaled to when outside [MinDPI, MaxDPI] (300)
	// MinDPI: pages below it are scaled up to TargetDPI (140). Fax pages at 150 and 200
	// dpi are read as they are: Tesseract's recognizer scales each text line to its own
	// height, and upscaling them bought no accuracy (the 8087_054 page of Tesseract's
	// test set at 200 and 150 dpi: the same CER read as is and upscaled to 300 dpi) for
	// up to four times the pixels — the plain `tesseract IMG -` that bench-pipeline
	// measures against reads them as they are too.
	MinDPI int
	MaxDPI int // pages above this are scaled down to TargetDPI (450)
	// MaxPixels caps the image OCR reads; a larger page is scaled down to fit (35 million,
	// a tabloid page at 300 dpi).
	MaxPixels int
	// DeskewMin is the smallest skew, in degrees, that is corrected (0.3).
	DeskewMin float64
	// OrientMinConf is the Tesseract OSD orientation confidence below which a page is left
	// as it is (2.0; a clear page of text scores 8–20, a page of little text under 1).
	OrientMinConf float64
	// BlankInk is the share of dark pixels in a page's central area under which the page
	// may be blank (0.002); it is blank when it also has fewer than BlankMaxChars
	// components the size of printed characters (5).
	BlankInk      float64
	BlankMaxChars int
	// LittleTextWords: a page with fewer confident words (confidence ≥ 60, two or more
	// letters or digits) than this is marked LittleText (8).
	LittleTextWords int
}

// DefaultOptions are the options used for a zero field.
var DefaultOptions = Options{TargetDPI: 300, MinDPI: 140, MaxDPI: 450, MaxPixels: 35_000_000,
	DeskewMin: 0.3, OrientMinConf: 2.0, BlankInk: 0.002, BlankMaxChars: 5, LittleTextWords: 8}

func (o Options) withDefaults() Options {
	d := DefaultOptions
	if o.TargetDPI > 0 {
		d.TargetDPI = o.TargetDPI
	}
	if o.MinDPI > 0 {
		d.MinDPI = o.MinDPI
	}
	if o.MaxDPI > 0 {
		d.MaxDPI = o.MaxDPI
	}
	if o.MaxPixels > 0 {
		d.MaxPixels = o.MaxPixels
	}
	if o.DeskewMin > 0 {
		d.DeskewMin = o.DeskewMin
	}
	if o.OrientMinConf > 0 {
		d.OrientMinConf = o.OrientMinConf
	}
	if o.BlankInk > 0 {
		d.BlankInk = o.BlankInk
	}
	if o.BlankMaxChars > 0 {
		d.BlankMaxChars = o.BlankMaxChars
	}
	if o.LittleTextWords > 0 {
		d.LittleTextWords = o.LittleTextWords
	}
	return d
}

// ErrImage reports a page image Leptonica cannot decode.
var ErrImage = errors.New("page image cannot be decoded")

// pix is a Leptonica image owned by Go code; free it once.
type pix struct{ p *C.PIX }

func (p *pix) free() {
	if p != nil && p.p != nil {
		C.pixDestroy(&p.p)
	}
}

// replace frees p's image and takes q's.
func (p *pix) replace(q *C.PIX) error {
	if q == nil {
		return errors.New("leptonica: image operation failed")
	}
	C.pixDestroy(&p.p)
	p.p = q
	return nil
}

func (p *pix) size() (w, h int) { return int(C.pixGetWidth(p.p)), int(C.pixGetHeight(p.p)) }

func (p *pix) depth() int { return int(C.pixGetDepth(p.p)) }

func readPix(b []byte) (*pix, error) {
	if len(b) == 0 {
		return nil, ErrImage
	}
	cb := C.CBytes(b)
	defer C.free(cb)
	p := C.pixReadMem((*C.l_uint8)(cb), C.size_t(len(b)))
	if p == nil {
		return nil, ErrImage
	}
	return &pix{p}, nil
}

// encodeUpright encodes the upright copy a reviewer sees and the searchable PDF embeds:
// a bilevel page as PNG at zlib level 1 (a third faster than the default level 6, 15%
// larger), a grey one as JPEG at quality 90 (a grey page is nearly always a JPEG scan to
// begin with; PNG of 8.4 million grey samples cost several times as long and was larger).
// It returns the bytes and their media type.
func (p *pix) encodeUpright() ([]byte, string, error) {
	var data *C.l_uint8
	var size C.size_t
	kind := "image/png"
	var rc C.l_ok
	if C.pixGetDepth(p.p) == 1 {
		C.pixSetZlibCompression(p.p, 1)
		rc = C.pixWriteMemPng(&data, &size, p.p, 0)
	} else {
		kind = "image/jpeg"
		rc = C.pixWriteMemJpeg(&data, &size, p.p, 90, 0)
	}
	if rc != 0 || data == nil {
		return nil, "", errors.New("leptonica: encode image")
	}
	defer C.free(unsafe.Pointer(data))
	return C.GoBytes(unsafe.Pointer(data), C.int(size)), kind, nil
}

// gray copies p into a Go image.
func (p *pix) gray() *image.Gray {
	src := p.p
	if d := C.pixGetDepth(src); (d != 8 && d != 1) || C.pixGetColormap(src) != nil {
		src = C.pixConvertTo8(p.p, 0)
		defer C.pixDestroy(&src)
	}
	w, h := int(C.pixGetWidth(src)), int(C.pixGetHeight(src))
	g := image.NewGray(image.Rect(0, 0, w, h))
	if w > 0 && h > 0 {
		C.cs_gray_bytes(src, (*C.uchar)(unsafe.Pointer(&g.Pix[0])))
	}
	return g
}

// scaleFor is the factor that brings a page of w×h pixels at dpi into the resolution
// window and under the pixel cap.
func scaleFor(w, h, dpi int, o Options) float64 {
	f := 1.0
	if dpi > 0 && dpi < o.MinDPI {
		f = math.Min(float64(o.TargetDPI)/float64(dpi), 4)
	} else if dpi > o.MaxDPI {
		f = float64(o.TargetDPI) / float64(dpi)
	}
	if px := float64(w) * float64(h) * f * f; px > float64(o.MaxPixels) {
		f *= math.Sqrt(float64(o.MaxPixels) / px)
	}
	return f
}

// page is a page image prepared for OCR: normalized, upright and straight.
type page struct {
	img      *pix
	dpi      int
	scale    float64
	changed  bool // geometry differs from the input image
	blank    bool
	ink      float64
	rotation int
	rotConf  float64
	skew     float64
	deskewed bool
	bin      *C.PIX // a bilevel copy of img (dark on), or nil until one is needed
}

func (pg *page) free() {
	pg.img.free()
	if pg.bin != nil {
		C.pixDestroy(&pg.bin)
	}
}

// replace makes q the page's image; the bilevel copy of the old one goes.
func (pg *page) replace(q *C.PIX) error {
	if err := pg.img.replace(q); err != nil {
		return err
	}
	if pg.bin != nil {
		C.pixDestroy(&pg.bin)
	}
	return nil
}

// binary returns a bilevel copy of the page as it is now (dark on), made once.
func (pg *page) binary() *C.PIX {
	if pg.bin == nil {
		pg.bin = C.cs_binarize(pg.img.p)
	}
	return pg.bin
}

// normalize decodes an encoded page image and scales it into the resolution window, as
// 1 bpp or 8 bpp grey, and measures its ink.
func normalize(b []byte, dpi int, o Options) (*page, error) {
	src, err := readPix(b)
	if err != nil {
		return nil, err
	}
	defer src.free()
	w, h := src.size()
	if dpi <= 0 {
		dpi = guessDPI(w)
	}
	f := scaleFor(w, h, dpi, o)
	if math.Abs(f-1) < 0.02 {
		f = 1
	}
	n := C.cs_normalize(src.p, C.float(f))
	if n == nil {
		return nil, fmt.Errorf("normalize %dx%d page: %w", w, h, ErrImage)
	}
	pg := &page{img: &pix{n}, dpi: int(math.Round(float64(dpi) * f)), scale: f, changed: f != 1}
	C.pixSetResolution(n, C.l_int32(pg.dpi), C.l_int32(pg.dpi))
	// The bilevel copy is kept for deskew, which measures the same image.
	pg.bin = C.cs_binarize(n)
	var ink C.float
	var chars C.int
	C.cs_ink(pg.bin, C.int(pg.dpi), C.float(o.BlankInk), &ink, &chars)
	pg.ink = float64(ink)
	pg.blank = pg.ink < o.BlankInk && chars >= 0 && int(chars) < o.BlankMaxChars
	return pg, nil
}

// IsBlank tells whether an encoded page image is near-empty — a duplex back, a blank
// separator — from its ink alone, without OCR: under 0.2% dark pixels in the central area
// and no more than a few components the size of printed characters. Engine.Read makes
// the same check first and skips OCR on a blank page.
func IsBlank(img []byte, dpi int) (bool, error) {
	pg, err := normalize(img, dpi, DefaultOptions)
	if err != nil {
		return false, err
	}
	defer pg.free()
	return pg.blank, nil
}

// orient detects the page's orientation with Tesseract OSD and turns it upright when
// OSD is confident enough; it reports whether it turned the page.
func (pg *page) orient(osd *C.TessBaseAPI, o Options) (bool, error) {
	var deg C.int
	var conf C.float
	if osd == nil || C.cs_osd(osd, pg.img.p, C.int(pg.dpi), &deg, &conf) == 0 {
		return false, nil
	}
	pg.rotConf = float64(conf)
	// OSD reports how far the page is turned counter-clockwise; turning it as far
	// clockwise makes it upright.
	rot := (360 - int(deg)) % 360
	if rot == 0 || pg.rotConf < o.OrientMinConf {
		return false, nil
	}
	if err := pg.replace(C.pixRotateOrth(pg.img.p, C.l_int32(rot/90))); err != nil {
		return false, err
	}
	pg.rotation, pg.changed = rot, true
	return true, nil
}

// deskew measures the page's skew with Leptonica and straightens it when the skew is over
// DeskewMin.
func (pg *page) deskew(o Options) error {
	bin := pg.binary()
	var angle, sconf C.l_float32
	red := C.l_int32(4)
	if pg.dpi < 200 {
		red = 2
	}
	if C.pixFindSkewSweepAndSearch(bin, &angle, &sconf, red, 2, 10, 1, 0.01) == 0 && sconf >= 3 {
		pg.skew = float64(angle)
		if math.Abs(pg.skew) >= o.DeskewMin {
			if err := pg.replace(C.cs_deskew(pg.img.p, angle)); err != nil {
				return err
			}
			pg.deskewed, pg.changed = true, true
		}
	}
	return nil
}

func newOSD() (*C.TessBaseAPI, error) {
	api := C.TessBaseAPICreate()
	lang := C.CString("osd")
	defer C.free(unsafe.Pointer(lang))
	if C.TessBaseAPIInit3(api, nil, lang) != 0 {
		C.TessBaseAPIDelete(api)
		return nil, errors.New("tesseract orientation model cannot be loaded; install tesseract-ocr-osd")
	}
	C.TessBaseAPISetPageSegMode(api, C.PSM_OSD_ONLY)
	return api, nil
}

func freeOSD(api *C.TessBaseAPI) {
	if api != nil {
		C.TessBaseAPIEnd(api)
		C.TessBaseAPIDelete(api)
	}
}
