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
	"io"
	"strings"

	"golang.org/x/image/ccitt"
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
// than G4).
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
		x, err = tiffXObject(b)
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
	if w <= 0 || h <= 0 || !validPNGDepth(ctype, depth) {
		return xobject{}, fmt.Errorf("the PNG is damaged (%d×%d pixels, colour type %d at %d bits)", w, h, ctype, depth)
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

// validPNGDepth reports whether a PNG may have this colour type at this bit depth.
func validPNGDepth(ctype, depth byte) bool {
	switch ctype {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8
	case 2, 4, 6:
		return depth == 8 || depth == 16
	}
	return false
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

// tiffIFD is the first image file directory of a TIFF: tag → values (SHORT or LONG).
type tiffIFD map[uint16][]uint32

func (d tiffIFD) first(tag uint16, def uint32) uint32 {
	if v := d[tag]; len(v) > 0 {
		return v[0]
	}
	return def
}

// readIFD reads the first IFD's SHORT and LONG entries, inline or not; nil if the file
// is not a TIFF it can read.
func readIFD(b []byte) tiffIFD {
	if len(b) < 8 {
		return nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if b[0] == 'M' {
		bo = binary.BigEndian
	}
	ifd := int(bo.Uint32(b[4:]))
	if ifd < 8 || ifd+2 > len(b) {
		return nil
	}
	n := int(bo.Uint16(b[ifd:]))
	if ifd+2+12*n > len(b) {
		return nil
	}
	d := tiffIFD{}
	for i := range n {
		e := b[ifd+2+12*i:]
		tag, typ, count := bo.Uint16(e), bo.Uint16(e[2:]), int(bo.Uint32(e[4:]))
		var size int
		switch typ {
		case 3: // SHORT
			size = 2
		case 4: // LONG
			size = 4
		}
		if size == 0 || count <= 0 || count > len(b) {
			continue
		}
		data := e[8:12]
		if size*count > 4 {
			off := int(bo.Uint32(e[8:]))
			if off < 0 || off+size*count > len(b) {
				return nil
			}
			data = b[off : off+size*count]
		}
		vs := make([]uint32, count)
		for j := range vs {
			if size == 2 {
				vs[j] = uint32(bo.Uint16(data[2*j:]))
			} else {
				vs[j] = bo.Uint32(data[4*j:])
			}
		}
		d[tag] = vs
	}
	return d
}

// TIFF tags and values read here.
const (
	tagWidth, tagHeight   = 256, 257
	tagBitsPerSample      = 258
	tagCompression        = 259
	tagPhotometric        = 262
	tagFillOrder          = 266
	tagStripOffsets       = 273
	tagSamplesPerPixel    = 277
	tagRowsPerStrip       = 278
	tagStripByteCounts    = 279
	tagT6Options          = 293
	tagPredictor          = 317
	compressionG4         = 4
	compressionDeflate    = 8
	compressionDeflateOld = 32946
	photometricMinIsWhite = 0
	photometricMinIsBlack = 1
	t6UncompressedAllowed = 2
	fillOrderLSBFirst     = 2
)

// tiffXObject embeds a bilevel CCITT G4 TIFF — what scanners and fax servers write for
// black-and-white pages — without going through an image: one strip as it is, for
// CCITTFaxDecode with K -1 reads exactly that; several strips (each coded on its own,
// which one PDF stream cannot express) decoded row by row into a 1-bit raster for Flate.
// A one-strip grey Deflate TIFF goes in as its zlib stream (deflateTIFFXObject). Other
// TIFFs are decoded as images.
func tiffXObject(b []byte) (xobject, error) {
	d := readIFD(b)
	if d == nil {
		return xobject{}, errNoPassthrough
	}
	w, h := int(d.first(tagWidth, 0)), int(d.first(tagHeight, 0))
	photometric := d.first(tagPhotometric, photometricMinIsWhite)
	offs, sizes := d[tagStripOffsets], d[tagStripByteCounts]
	if c := d.first(tagCompression, 1); c == compressionDeflate || c == compressionDeflateOld {
		return deflateTIFFXObject(b, d, w, h, photometric)
	}
	if d.first(tagCompression, 1) != compressionG4 || d.first(tagBitsPerSample, 1) != 1 ||
		d.first(tagSamplesPerPixel, 1) != 1 || d.first(tagT6Options, 0)&t6UncompressedAllowed != 0 ||
		(photometric != photometricMinIsWhite && photometric != photometricMinIsBlack) ||
		w <= 0 || h <= 0 || len(offs) == 0 || len(offs) != len(sizes) {
		return xobject{}, errNoPassthrough
	}
	strips := make([][]byte, len(offs))
	for i := range offs {
		o, n := int(offs[i]), int(sizes[i])
		if o <= 0 || n <= 0 || o+n > len(b) || o+n < o {
			return xobject{}, errors.New("the TIFF is truncated (a strip runs past the end of the file)")
		}
		strips[i] = b[o : o+n]
	}
	lsbFirst := d.first(tagFillOrder, 1) == fillOrderLSBFirst
	if len(strips) == 1 && !lsbFirst {
		// TIFF's fax decoding gives white runs 0 and black runs 1, shown as the
		// photometric tag says; PDF's gives black runs 0 unless BlackIs1. Min-is-white
		// shows the runs as they are coded, as PDF does by default; min-is-black shows
		// them inverted.
		blackIs1 := ""
		if photometric == photometricMinIsBlack {
			blackIs1 = " /BlackIs1 true"
		}
		return xobject{
			width: w, height: h,
			dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode "+
				"/DecodeParms << /K -1 /Columns %d /Rows %d%s >>", w, h, w, h, blackIs1),
			data: [][]byte{strips[0]},
		}, nil
	}
	rps := int(d.first(tagRowsPerStrip, uint32(h)))
	if rps <= 0 || (h+rps-1)/rps != len(strips) {
		return xobject{}, errNoPassthrough
	}
	order := ccitt.MSB
	if lsbFirst {
		order = ccitt.LSB
	}
	stride := (w + 7) / 8
	raw := make([]byte, stride*h)
	for i, strip := range strips {
		rows := min(rps, h-i*rps)
		// ccitt writes white as 1, as PDF's DeviceGray shows it; min-is-black shows the
		// coded white runs black.
		r := ccitt.NewReader(bytes.NewReader(strip), order, ccitt.Group4, w, rows,
			&ccitt.Options{Invert: photometric == photometricMinIsBlack})
		if _, err := io.ReadFull(r, raw[i*rps*stride:(i*rps+rows)*stride]); err != nil {
			return xobject{}, fmt.Errorf("the TIFF's G4 data is damaged (strip %d of %d: %v)", i+1, len(strips), err)
		}
	}
	return flateXObject(w, h, raw, 1, "/DeviceGray")
}

// deflateTIFFXObject embeds a one-strip grey Deflate TIFF of 1 or 8 bits without a
// predictor — what chartscan's split makes of a PDF scan's Flate page — as the zlib
// stream it holds: FlateDecode reads exactly that, PDF's DeviceGray meaning
// BlackIsZero, and a Decode array inverting min-is-white. Anything else is decoded.
func deflateTIFFXObject(b []byte, d tiffIFD, w, h int, photometric uint32) (xobject, error) {
	offs, sizes := d[tagStripOffsets], d[tagStripByteCounts]
	bps := d.first(tagBitsPerSample, 1)
	if len(offs) != 1 || len(sizes) != 1 || (bps != 1 && bps != 8) || d.first(tagSamplesPerPixel, 1) != 1 ||
		d.first(tagPredictor, 1) != 1 || d.first(tagFillOrder, 1) != 1 || w <= 0 || h <= 0 ||
		int(d.first(tagRowsPerStrip, uint32(h))) < h ||
		(photometric != photometricMinIsWhite && photometric != photometricMinIsBlack) {
		return xobject{}, errNoPassthrough
	}
	o, n := int(offs[0]), int(sizes[0])
	if o <= 0 || n <= 2 || o+n > len(b) || o+n < o {
		return xobject{}, errors.New("the TIFF is truncated (a strip runs past the end of the file)")
	}
	z := b[o : o+n]
	if z[0]&0x0f != 8 || (int(z[0])<<8|int(z[1]))%31 != 0 {
		return xobject{}, errNoPassthrough // not a zlib stream
	}
	decode := ""
	if photometric == photometricMinIsWhite {
		decode = " /Decode [1 0]"
	}
	return zlibXObject(w, h, z, int(bps), "/DeviceGray", decode), nil
}

// decodedXObject decodes an image and stores it with Flate as 1-bit grey when it is
// black and white, as 8-bit grey when it is grey, and as RGB otherwise; transparency is
// flattened onto white paper (PDF/A permits soft masks, but a scan has nothing behind it).
func decodedXObject(b []byte, kind string) (xobject, error) {
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		if kind == typeTIFF {
			if d := readIFD(b); d != nil {
				c := d.first(tagCompression, 1)
				return xobject{}, fmt.Errorf("the TIFF (compression %d, %s) cannot be decoded for the PDF: %v; "+
					"pages stored as PDF, PNG, JPEG, G4 or uncompressed, LZW, Deflate or PackBits TIFF can be", c, tiffCompressionName(c), err)
			}
		}
		return xobject{}, fmt.Errorf("the %s cannot be decoded: %v", kind, err)
	}
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	if w <= 0 || h <= 0 {
		return xobject{}, fmt.Errorf("the %s has no pixels", kind)
	}
	var pix []byte // grey, one byte a pixel
	if g, ok := img.(*image.Gray); ok && g.Stride == w {
		pix = g.Pix[:w*h]
	} else if ok {
		pix = make([]byte, 0, w*h)
		for y := range h {
			pix = append(pix, g.Pix[y*g.Stride:y*g.Stride+w]...)
		}
	} else {
		at := rgbAt(img)
		rgb := make([]byte, 3*w*h)
		grey := true
		i := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				cr, cg, cb := at(x, y)
				rgb[i], rgb[i+1], rgb[i+2] = cr, cg, cb
				grey = grey && cr == cg && cg == cb
				i += 3
			}
		}
		if !grey {
			return flateXObject(w, h, rgb, 8, "/DeviceRGB")
		}
		pix = make([]byte, w*h)
		for i := range pix {
			pix[i] = rgb[3*i]
		}
	}
	for _, v := range pix {
		if v != 0 && v != 255 {
			return flateXObject(w, h, pix, 8, "/DeviceGray")
		}
	}
	stride := (w + 7) / 8
	raw := make([]byte, stride*h)
	for y := range h {
		row, out := pix[y*w:(y+1)*w], raw[y*stride:]
		for x, v := range row {
			if v != 0 {
				out[x>>3] |= 0x80 >> (x & 7)
			}
		}
	}
	return flateXObject(w, h, raw, 1, "/DeviceGray")
}

// rgbAt returns a pixel reader for img, composited onto white, that for the image
// types decoders return reads the pixel without the interface conversions of img.At,
// which cost more than the rest of the page.
func rgbAt(img image.Image) func(x, y int) (r, g, b uint8) {
	switch m := img.(type) {
	case *image.RGBA:
		return func(x, y int) (uint8, uint8, uint8) {
			i := m.PixOffset(x, y)
			a := m.Pix[i+3]
			return overPre(m.Pix[i], a), overPre(m.Pix[i+1], a), overPre(m.Pix[i+2], a)
		}
	case *image.NRGBA:
		return func(x, y int) (uint8, uint8, uint8) {
			i := m.PixOffset(x, y)
			a := m.Pix[i+3]
			return over(m.Pix[i], a), over(m.Pix[i+1], a), over(m.Pix[i+2], a)
		}
	case *image.YCbCr:
		return func(x, y int) (uint8, uint8, uint8) {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			return color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
		}
	case *image.CMYK:
		return func(x, y int) (uint8, uint8, uint8) {
			i := m.PixOffset(x, y)
			return color.CMYKToRGB(m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3])
		}
	case *image.Paletted:
		pal := make([][3]uint8, len(m.Palette))
		for i, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[i] = [3]uint8{over(n.R, n.A), over(n.G, n.A), over(n.B, n.A)}
		}
		return func(x, y int) (uint8, uint8, uint8) {
			c := pal[m.Pix[m.PixOffset(x, y)]]
			return c[0], c[1], c[2]
		}
	}
	return func(x, y int) (uint8, uint8, uint8) {
		c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
		return over(c.R, c.A), over(c.G, c.A), over(c.B, c.A)
	}
}

func tiffCompressionName(c uint32) string {
	switch c {
	case 1:
		return "none"
	case 2:
		return "CCITT RLE"
	case 3:
		return "CCITT G3"
	case 4:
		return "CCITT G4"
	case 5:
		return "LZW"
	case 6:
		return "old-style JPEG"
	case 7:
		return "JPEG"
	case 8, 32946:
		return "Deflate"
	case 32773:
		return "PackBits"
	}
	return "unknown"
}

// over composites a colour channel of alpha a onto white.
func over(v, a uint8) uint8 {
	return uint8((int(v)*int(a) + 255*(255-int(a)) + 127) / 255)
}

// overPre composites a premultiplied colour channel of alpha a onto white.
func overPre(v, a uint8) uint8 { return v + 255 - a }

func flateXObject(w, h int, raw []byte, bpc int, cs string) (xobject, error) {
	z, err := deflate(raw)
	if err != nil {
		return xobject{}, err
	}
	return zlibXObject(w, h, z, bpc, cs, ""), nil
}

// zlibXObject is the image XObject of a zlib stream z of w×h samples of bpc bits in
// colour space cs; extra goes into its dictionary as it is (a /Decode array).
func zlibXObject(w, h int, z []byte, bpc int, cs, extra string) xobject {
	return xobject{
		width: w, height: h,
		dict: fmt.Sprintf("/Width %d /Height %d /ColorSpace %s /BitsPerComponent %d /Filter /FlateDecode%s",
			w, h, cs, bpc, extra),
		data: [][]byte{z},
	}
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
