package ocr

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// rawScanImage hands over a page image without re-encoding it where the PDF's own
// encoding is one Tesseract and browsers read: a DCT stream is a JPEG file as it stands,
// a Flate-compressed grey image (1 or 8 bits, the usual scanner output besides JPEG
// and CCITT) becomes a Deflate TIFF or a PNG around the same zlib stream (see flateAsIs;
// rows it cannot wrap as they are are inflated and written as a PNG), and a JBIG2 page
// coded as one MMR region or a CCITT Group 4 stream is G4 fax data that becomes a TIFF
// (see jbig2MMR and ccittAsIs). pdfcpu's
// general path turns every image into RGBA and PNG-encodes it, which cost 400 ms a page —
// half as much again as the OCR it feeds. It reports false for anything else, which then
// takes that general path.
func rawScanImage(sd *types.StreamDict) (data []byte, k Kind, w, h int, ok bool) {
	if len(sd.FilterPipeline) != 1 {
		return nil, "", 0, 0, false
	}
	wp, hp, bpcp := sd.IntEntry("Width"), sd.IntEntry("Height"), sd.IntEntry("BitsPerComponent")
	cs := sd.NameEntry("ColorSpace")
	if wp == nil || hp == nil || bpcp == nil || cs == nil || *wp <= 0 || *hp <= 0 {
		return nil, "", 0, 0, false
	}
	_, mask := sd.Find("Mask")
	_, smask := sd.Find("SMask")
	if sd.ArrayEntry("Decode") != nil || mask || smask {
		return nil, "", 0, 0, false
	}
	if im := sd.BooleanEntry("ImageMask"); im != nil && *im {
		return nil, "", 0, 0, false
	}
	w, h = *wp, *hp
	switch f := sd.FilterPipeline[0].Name; {
	case f == "DCTDecode" && (*cs == "DeviceGray" || *cs == "DeviceRGB") && *bpcp == 8:
		if len(sd.Raw) == 0 {
			return nil, "", 0, 0, false
		}
		return sd.Raw, KindJPEG, w, h, true
	case f == "FlateDecode" && *cs == "DeviceGray" && (*bpcp == 1 || *bpcp == 8):
		if b, k, ok := flateAsIs(sd, w, h, *bpcp); ok {
			return b, k, w, h, true
		}
		if err := sd.Decode(); err != nil {
			return nil, "", 0, 0, false
		}
		// The inflated rows would stay with the PDF's objects until the whole file is
		// split: 1 MB a bilevel page, 8 MB a grey one.
		defer func() { sd.Content = nil }()
		stride := (w**bpcp + 7) / 8
		if len(sd.Content) < stride*h {
			return nil, "", 0, 0, false
		}
		b, err := greyPNG(sd.Content, w, h, *bpcp, stride)
		if err != nil {
			return nil, "", 0, 0, false
		}
		return b, KindPNG, w, h, true
	case f == "CCITTFaxDecode" && *cs == "DeviceGray" && *bpcp == 1:
		if b, ok := ccittAsIs(sd, w, h); ok {
			return b, KindTIFF, w, h, true
		}
		return nil, "", 0, 0, false
	case f == "JBIG2Decode" && *cs == "DeviceGray" && *bpcp == 1:
		if parms := sd.FilterPipeline[0].DecodeParms; parms != nil {
			if _, ok := parms.Find("JBIG2Globals"); ok {
				return nil, "", 0, 0, false
			}
		}
		g4, ok := jbig2MMR(sd.Raw, w, h)
		if !ok {
			return nil, "", 0, 0, false
		}
		return g4TIFF(g4, w, h), KindTIFF, w, h, true
	}
	return nil, "", 0, 0, false
}

// flateAsIs hands over a Flate-compressed grey page without inflating and deflating it
// again, which cost more than all of chartscan's other work on a page but OCR: the zlib
// stream of rows without a predictor is a TIFF strip with Deflate compression (TIFF's
// BlackIsZero is DeviceGray's meaning of 0), and one with the PNG predictors is a PNG's
// IDAT as it stands (each row behind its filter byte). The stream is inflated once to
// check it — whole, checksum right, every PNG filter byte valid — so a damaged page
// still takes the decoding path (and then pdftoppm) rather than failing in the reader.
// It reports false for anything else (the TIFF predictor, several colours, other
// parameters).
func flateAsIs(sd *types.StreamDict, w, h, bpc int) ([]byte, Kind, bool) {
	raw := sd.Raw
	if len(raw) < 2 || raw[0]&0x0f != 8 || (int(raw[0])<<8|int(raw[1]))%31 != 0 || raw[1]&0x20 != 0 {
		return nil, "", false // not a zlib stream (a raw deflate stream or a preset dictionary)
	}
	predictor, colors, pbpc, columns := 1, 1, 8, 1
	if parms := sd.FilterPipeline[0].DecodeParms; parms != nil {
		for key, v := range map[string]*int{"Predictor": &predictor, "Colors": &colors, "BitsPerComponent": &pbpc, "Columns": &columns} {
			if o, found := parms.Find(key); found {
				i, ok := o.(types.Integer)
				if !ok {
					return nil, "", false
				}
				*v = int(i)
			}
		}
	}
	stride := (w*bpc + 7) / 8
	switch {
	case predictor == 1:
		if !inflatesTo(raw, h, stride, false) {
			return nil, "", false
		}
		return deflateTIFF(raw, w, h, bpc), KindTIFF, true
	case predictor >= 10 && predictor <= 15 && colors == 1 && pbpc == bpc && columns == w:
		if !inflatesTo(raw, h, stride+1, true) {
			return nil, "", false
		}
		return zlibPNG(raw, w, h, bpc), KindPNG, true
	}
	return nil, "", false
}

// ccittAsIs wraps a page's CCITT Group 4 data (K < 0, what tiff2pdf and scanners'
// bilevel PDFs hold) as a one-strip TIFF of the same data, as jbig2MMR's pages are.
// PDF's filter shows coded white runs white unless BlackIs1, TIFF's min-is-white does
// the same and min-is-black the opposite. Group 3 (K ≥ 0) and byte-aligned rows have
// no TIFF equivalent this simple and take pdfcpu's path.
func ccittAsIs(sd *types.StreamDict, w, h int) ([]byte, bool) {
	k, columns, rows := 0, 1728, 0
	align, blackIs1 := false, false
	if parms := sd.FilterPipeline[0].DecodeParms; parms != nil {
		for key, v := range map[string]*int{"K": &k, "Columns": &columns, "Rows": &rows} {
			if o, found := parms.Find(key); found {
				i, ok := o.(types.Integer)
				if !ok {
					return nil, false
				}
				*v = int(i)
			}
		}
		for key, v := range map[string]*bool{"EncodedByteAlign": &align, "BlackIs1": &blackIs1} {
			if o, found := parms.Find(key); found {
				b, ok := o.(types.Boolean)
				if !ok {
					return nil, false
				}
				*v = bool(b)
			}
		}
	}
	if k >= 0 || align || columns != w || (rows != 0 && rows != h) || len(sd.Raw) == 0 {
		return nil, false
	}
	photometric := 0 // min-is-white
	if blackIs1 {
		photometric = 1
	}
	return oneStripTIFF(sd.Raw, w, h, 1, 4, photometric), true
}

// inflatesTo reports whether the zlib stream z holds exactly rows rows of n bytes, with
// its checksum right; with filtered, each row's first byte must be a PNG filter type.
func inflatesTo(z []byte, rows, n int, filtered bool) bool {
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return false
	}
	defer zr.Close()
	buf := make([]byte, n)
	for range rows {
		if _, err := io.ReadFull(zr, buf); err != nil || (filtered && buf[0] > 4) {
			return false
		}
	}
	m, err := zr.Read(buf[:1])
	return m == 0 && err == io.EOF
}

// deflateTIFF wraps the zlib stream of w×h rows of bpc-bit grey samples, 0 black, as a
// one-strip little-endian TIFF with Deflate compression.
func deflateTIFF(z []byte, w, h, bpc int) []byte {
	return oneStripTIFF(z, w, h, bpc, 8, 1) // Compression 8: Adobe Deflate; Photometric 1: BlackIsZero
}

// zlibPNG wraps a zlib stream of PNG-filtered rows of bpc-bit grey as a PNG.
func zlibPNG(z []byte, w, h, bpc int) []byte {
	var out bytes.Buffer
	out.Grow(len(z) + 64)
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(bpc), 0 // bit depth, greyscale
	writeChunk(&out, "IHDR", ihdr)
	writeChunk(&out, "IDAT", z)
	writeChunk(&out, "IEND", nil)
	return out.Bytes()
}

// jbig2MMR returns the coded data of an embedded JBIG2 stream (ITU T.88 Annex D.3, as
// PDF holds it) that is one w×h page drawn by one MMR-coded generic region covering it,
// what a bilevel scanner that writes JBIG2 without a symbol dictionary makes. MMR is
// CCITT T.6 (G4), which Leptonica decodes exactly, whereas poppler 22.12's JBIG2 MMR
// decoder gets some runs wrong (enough to garble a line of text; see
// TestReadJBIG2PDFPage). It reports false for anything else (arithmetic coding, symbols,
// several regions, refinement), which pdftoppm then draws.
func jbig2MMR(b []byte, w, h int) ([]byte, bool) {
	be := binary.BigEndian
	var mmr []byte
	page := false
	for len(b) > 0 {
		// The segment header (§7.2): number (4), flags (1), referred-to segments (1 when
		// there are none, which a page and an immediate region refer to), page
		// association (1, or 4 when flagged), data length (4).
		if len(b) < 6 || b[5] != 0 {
			return nil, false
		}
		typ := b[4] & 0x3f
		p := 7
		if b[4]&0x40 != 0 {
			p = 10
		}
		if len(b) < p+4 {
			return nil, false
		}
		n := be.Uint32(b[p:])
		p += 4
		if n == 0xffffffff || uint64(n) > uint64(len(b)-p) { // unknown length: not a whole page
			return nil, false
		}
		data := b[p : p+int(n)]
		b = b[p+int(n):]
		switch typ {
		case 48: // page information (§7.4.8)
			// The page must be the image, its default pixel white (flags bit 2).
			if page || len(data) < 19 || be.Uint32(data) != uint32(w) || be.Uint32(data[4:]) != uint32(h) || data[16]&0x04 != 0 {
				return nil, false
			}
			page = true
		case 38, 39: // immediate (lossless) generic region (§7.4.6)
			// It must cover the page at 0,0, combined so that it is the page (OR, XOR or
			// REPLACE onto white), and be MMR-coded (generic region flags bit 0).
			if !page || mmr != nil || len(data) < 18 || be.Uint32(data) != uint32(w) || be.Uint32(data[4:]) != uint32(h) ||
				be.Uint32(data[8:]) != 0 || be.Uint32(data[12:]) != 0 || data[17]&0x01 == 0 {
				return nil, false
			}
			if op := data[16] & 0x07; op != 0 && op != 2 && op != 4 {
				return nil, false
			}
			mmr = data[18:]
		case 49, 51, 62: // end of page and end of file (PDF forbids them, some writers leave them), extension
		default:
			return nil, false
		}
	}
	return mmr, mmr != nil && len(mmr) > 0
}

// g4TIFF wraps G4 data of a w×h bilevel image as a one-strip little-endian TIFF. JBIG2's
// 1 is black, as TIFF's min-is-white's is, so the data goes in as it is.
func g4TIFF(g4 []byte, w, h int) []byte {
	return oneStripTIFF(g4, w, h, 1, 4, 0) // Compression 4: CCITT T.6; Photometric 0: WhiteIsZero
}

// oneStripTIFF wraps the coded data of a w×h image of one bps-bit sample a pixel as a
// one-strip little-endian TIFF.
func oneStripTIFF(data []byte, w, h, bps, compression, photometric int) []byte {
	le := binary.LittleEndian
	const entries = 8
	ifd := 8 + len(data) + len(data)%2 // IFDs start on a word boundary
	b := make([]byte, 0, ifd+2+12*entries+4)
	b = append(b, 'I', 'I', 42, 0)
	b = le.AppendUint32(b, uint32(ifd))
	b = append(b, data...)
	if len(data)%2 == 1 {
		b = append(b, 0)
	}
	b = le.AppendUint16(b, entries)
	for _, e := range [entries][3]uint32{ // tag, type (3 SHORT, 4 LONG), value; in tag order
		{256, 4, uint32(w)},           // ImageWidth
		{257, 4, uint32(h)},           // ImageLength
		{258, 3, uint32(bps)},         // BitsPerSample
		{259, 3, uint32(compression)}, // Compression
		{262, 3, uint32(photometric)}, // PhotometricInterpretation
		{273, 4, 8},                   // StripOffsets
		{278, 4, uint32(h)},           // RowsPerStrip
		{279, 4, uint32(len(data))},   // StripByteCounts
	} {
		b = le.AppendUint16(b, uint16(e[0]))
		b = le.AppendUint16(b, uint16(e[1]))
		b = le.AppendUint32(b, 1)
		if e[1] == 3 {
			b = le.AppendUint16(b, uint16(e[2]))
			b = le.AppendUint16(b, 0)
		} else {
			b = le.AppendUint32(b, e[2])
		}
	}
	return le.AppendUint32(b, 0) // no next IFD
}

// greyPNG writes rows of 1- or 8-bit grey samples as a PNG. PDF's DeviceGray and PNG's
// greyscale agree that 0 is black, so the rows go in unchanged, each behind PNG's
// "no filter" byte, compressed for speed: OCR is waiting.
func greyPNG(rows []byte, w, h, bpc, stride int) ([]byte, error) {
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	if err != nil {
		return nil, err
	}
	zero := []byte{0}
	for y := 0; y < h; y++ {
		zw.Write(zero)
		zw.Write(rows[y*stride : (y+1)*stride])
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return zlibPNG(z.Bytes(), w, h, bpc), nil
}

func writeChunk(b *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	b.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	b.WriteString(typ)
	b.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	b.Write(n[:])
}
