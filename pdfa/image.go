package pdfa

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // the decoding fallback
	"strings"

	_ "golang.org/x/image/tiff" // the decoding fallback
)

// xobject is a page image ready to be written as an image XObject: its dictionary
// entries (all but /Length) and its stream data, in pieces so that data taken from the
// scan is written without being copied.
type xobject struct {
	width, height int
	dict          string
	data          [][]byte
}

func (x xobject) length() int {
	n := 0
	for _, d := range x.data {
		n += len(d)
	}
	return n
}

// The image formats chartscan stores pages in.
const (
	typePNG  = "image/png"
	typeJPEG = "image/jpeg"
	typeTIFF = "image/tiff"
)

func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return typePNG
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return typeJPEG
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return typeTIFF
	}
	return ""
}

// errNoPassthrough says an image must be decoded and re-encoded: its encoding has no
// PDF filter of the same meaning (interlaced or transparent PNG, CMYK JPEG, TIFF other
// than one strip of G4).
var errNoPassthrough = errors.New("no passthrough")

// prepareImage makes the XObject for one page image. The scan's own compressed data goes
// into the PDF whenever a PDF filter reads it as it is — JPEG as DCTDecode, PNG's zlib
// stream with its row filters as FlateDecode with the PNG predictor, one-strip G4 TIFF
// as CCITTFaxDecode — so the archive keeps the pixels the scanner delivered and writing a
// page costs no image coding at all. Anything else is decoded and stored losslessly with
// Flate.
func prepareImage(b []byte, declared string) (xobject, error) {
	kind := sniff(b)
	if kind == "" {
		return xobject{}, fmt.Errorf("the image is not a PNG, JPEG or TIFF (it starts with % x)", b[:min(len(b), 8)])
	}
	if declared != "" && !strings.EqualFold(declared, kind) && !(kind == typeJPEG && strings.EqualFold(declared, "image/jpg")) {
		return xobject{}, fmt.Errorf("the image is stored as %s but its bytes are a %s; the page's image and type do not belong together", declared, kind)
	}
	var x xobject
	var err error
	switch kind {
	case typePNG:
		x, err = pngXObject(b)
	case typeJPEG:
		x, err = jpegXObject(b)
	case typeTIFF:
		x, err = g4XObject(b)
	}
	if errors.Is(err, errNoPassthrough) {
		x, err = decodedXObject(b, kind)
	}
	return x, err
}

func pngXObject(b []byte) (xobject, error) {
	var (
		w, h              int
		depth, ctype      byte
		interlace         byte
		palette           []byte
		transparent, seen bool
		idat              [][]byte
	)
	pos := 8
	for {
		if pos+12 > len(b) {
			return xobject{}, errors.New("the PNG is truncated (no IEND chunk)")
		}
		n := int(binary.BigEndian.Uint32(b[pos:]))
		if n < 0 || pos+12+n > len(b) {
			return xobject{}, errors.New("the PNG is truncated (a chunk runs past the end of the file)")
		}
		typ := string(b[pos+4 : pos+8])
		data := b[pos+8 : pos+8+n]
		if crc32.ChecksumIEEE(b[pos+4:pos+8+n]) != binary.BigEndian.Uint32(b[pos+8+n:]) {
			return xobject{}, fmt.Errorf("the PNG is damaged (bad checksum in its %q chunk)", typ)
		}
		pos += 12 + n
		switch typ {
		case "IHDR":
			if n != 13 {
				return xobject{}, errors.New("the PNG is damaged (bad IHDR chunk)")
			}
			w, h = int(binary.BigEndian.Uint32(data)), int(binary.BigEndian.Uint32(data[4:]))
			depth, ctype, interlace = data[8], data[9], data[12]
			seen = true
		case "PLTE":
			palette = data
		case "tRNS":
			transparent = true
		case "IDAT":
			idat = append(idat, data)
		}
		if typ == "IEND" {
			break
		}
	}
	if !seen || len(idat) == 0 {
		return xobject{}, errors.New("the PNG is damaged (no IHDR or no image data)")
	}
	if interlace != 0 || transparent || ctype == 4 || ctype == 6 {
		return xobject{}, errNoPassthrough
	}
	var cs string
	colors := 1
	switch ctype {
	case 0:
		cs = "/DeviceGray"
	case 2:
		cs, colors = "/DeviceRGB", 3
	case 3:
		if len(palette) == 0 || len(palette)%3 != 0 {
			return xobject{}, errors.New("the PNG is damaged (palette image without a palette)")
		}
		cs = fmt.Sprintf("[/Indexed /DeviceRGB %d %s]", len(palette)/3-1, hexString(palette))
	default:
		return xobject{}, fmt.Errorf("the PNG has an unknown colour type %d", ctype)
	}
	return xobject{
		width: w, height: h,
		dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace %s /BitsPerComponent %d /Filter /FlateDecode "+
			"/DecodeParms << /Predictor 15 /Colors %d /BitsPerComponent %d /Columns %d >>",
			w, h, cs, depth, colors, depth, w),
		data: idat,
	}, nil
}

func jpegXObject(b []byte) (xobject, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return xobject{}, fmt.Errorf("the JPEG cannot be read: %v", err)
	}
	var cs string
	switch cfg.ColorModel {
	case color.GrayModel:
		cs = "/DeviceGray"
	case color.YCbCrModel, color.RGBAModel:
		cs = "/DeviceRGB"
	default:
		// CMYK would need a CMYK output intent, and a PDF/A file has one output intent:
		// ours is sRGB.
		return xobject{}, errNoPassthrough
	}
	return xobject{
		width: cfg.Width, height: cfg.Height,
		dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace %s /BitsPerComponent 8 /Filter /DCTDecode",
			cfg.Width, cfg.Height, cs),
		data: [][]byte{b},
	}, nil
}

// g4XObject passes a one-strip CCITT G4 TIFF through: the strip is exactly what
// CCITTFaxDecode with K -1 reads. Other TIFFs are decoded.
func g4XObject(b []byte) (xobject, error) {
	var bo binary.ByteOrder = binary.LittleEndian
	if b[0] == 'M' {
		bo = binary.BigEndian
	}
	if len(b) < 8 {
		return xobject{}, errNoPassthrough
	}
	ifd := int(bo.Uint32(b[4:]))
	if ifd < 8 || ifd+2 > len(b) {
		return xobject{}, errNoPassthrough
	}
	n := int(bo.Uint16(b[ifd:]))
	if ifd+2+12*n > len(b) {
		return xobject{}, errNoPassthrough
	}
	tags := map[uint16]uint32{259: 1, 262: 0, 266: 1, 277: 1, 258: 1}
	counts := map[uint16]uint32{}
	for i := range n {
		e := b[ifd+2+12*i:]
		tag, typ, count := bo.Uint16(e), bo.Uint16(e[2:]), bo.Uint32(e[4:])
		counts[tag] = count
		switch typ {
		case 3: // SHORT
			tags[tag] = uint32(bo.Uint16(e[8:]))
		case 4: // LONG
			tags[tag] = bo.Uint32(e[8:])
		}
	}
	w, h := int(tags[256]), int(tags[257])
	off, size := int(tags[273]), int(tags[279])
	photometric := tags[262]
	if tags[259] != 4 || tags[258] != 1 || tags[277] != 1 || tags[266] != 1 ||
		counts[273] != 1 || counts[279] != 1 || tags[293]&2 != 0 ||
		(photometric != 0 && photometric != 1) || w <= 0 || h <= 0 ||
		off <= 0 || size <= 0 || off+size > len(b) {
		return xobject{}, errNoPassthrough
	}
	// TIFF's fax decoding gives white runs 0 and black runs 1, shown as TIFF's photometric
	// says; PDF's gives black runs 0 unless BlackIs1. Min-is-white shows the runs as they
	// are coded, as PDF does by default; min-is-black shows them inverted.
	blackIs1 := ""
	if photometric == 1 {
		blackIs1 = " /BlackIs1 true"
	}
	return xobject{
		width: w, height: h,
		dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode "+
			"/DecodeParms << /K -1 /Columns %d /Rows %d%s >>", w, h, w, h, blackIs1),
		data: [][]byte{b[off : off+size]},
	}, nil
}

// decodedXObject decodes an image and stores it with Flate as 1-bit grey when it is
// black and white, as 8-bit grey when it is grey, and as RGB otherwise; transparency is
// flattened onto white paper (PDF/A permits soft masks, but a scan has nothing behind it).
func decodedXObject(b []byte, kind string) (xobject, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return xobject{}, fmt.Errorf("the %s cannot be decoded: %v", kind, err)
	}
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return xobject{}, fmt.Errorf("the %s has no pixels", kind)
	}
	rgb := make([]byte, 0, 3*w*h)
	grey, bilevel := true, true
	if g, ok := img.(*image.Gray); ok {
		pix := make([]byte, 0, w*h)
		for y := range h {
			row := g.Pix[y*g.Stride : y*g.Stride+w]
			pix = append(pix, row...)
		}
		for _, v := range pix {
			if v != 0 && v != 255 {
				bilevel = false
				break
			}
		}
		return flateXObject(w, h, pix, nil, bilevel)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			cr, cg, cb := over(c.R, c.A), over(c.G, c.A), over(c.B, c.A)
			if cr != cg || cg != cb {
				grey = false
			}
			if cr != 0 && cr != 255 {
				bilevel = false
			}
			rgb = append(rgb, cr, cg, cb)
		}
	}
	if !grey {
		return flateXObject(w, h, nil, rgb, false)
	}
	pix := make([]byte, w*h)
	for i := range pix {
		pix[i] = rgb[3*i]
	}
	return flateXObject(w, h, pix, nil, bilevel)
}

// over composites a colour channel of alpha a onto white.
func over(v, a uint8) uint8 {
	return uint8((int(v)*int(a) + 255*(255-int(a)) + 127) / 255)
}

func flateXObject(w, h int, grey, rgb []byte, bilevel bool) (xobject, error) {
	var raw []byte
	cs, bpc := "/DeviceGray", 8
	switch {
	case rgb != nil:
		cs, raw = "/DeviceRGB", rgb
	case bilevel:
		bpc = 1
		stride := (w + 7) / 8
		raw = make([]byte, stride*h)
		for y := range h {
			for x := range w {
				if grey[y*w+x] != 0 {
					raw[y*stride+x/8] |= 0x80 >> (x % 8)
				}
			}
		}
	default:
		raw = grey
	}
	z, err := deflate(raw)
	if err != nil {
		return xobject{}, err
	}
	return xobject{
		width: w, height: h,
		dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace %s /BitsPerComponent %d /Filter /FlateDecode",
			w, h, cs, bpc),
		data: [][]byte{z},
	}, nil
}

func hexString(b []byte) string {
	const hexdigits = "0123456789ABCDEF"
	out := make([]byte, 0, 2+2*len(b))
	out = append(out, '<')
	for _, c := range b {
		out = append(out, hexdigits[c>>4], hexdigits[c&0xF])
	}
	return string(append(out, '>'))
}
