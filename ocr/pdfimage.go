package ocr

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// rawScanImage hands over a page image without re-encoding it where the PDF's own
// encoding is one Tesseract and browsers read: a DCT stream is a JPEG file as it stands,
// and a Flate-compressed grey image (1 or 8 bits, the usual scanner output besides JPEG
// and CCITT) becomes a PNG by wrapping its rows. pdfcpu's general path turns every image
// into RGBA and PNG-encodes it, which cost 400 ms a page — half as much again as the OCR
// it feeds. It reports false for anything else, which then takes that general path.
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
		if err := sd.Decode(); err != nil {
			return nil, "", 0, 0, false
		}
		stride := (w**bpcp + 7) / 8
		if len(sd.Content) < stride*h {
			return nil, "", 0, 0, false
		}
		b, err := greyPNG(sd.Content, w, h, *bpcp, stride)
		if err != nil {
			return nil, "", 0, 0, false
		}
		return b, KindPNG, w, h, true
	}
	return nil, "", 0, 0, false
}

// greyPNG writes rows of 1- or 8-bit grey samples as a PNG. PDF's DeviceGray and PNG's
// greyscale agree that 0 is black, so the rows go in unchanged, each behind PNG's
// "no filter" byte, compressed for speed: OCR is waiting.
func greyPNG(rows []byte, w, h, bpc, stride int) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(bpc), 0 // bit depth, greyscale
	writeChunk(&out, "IHDR", ihdr)
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
	writeChunk(&out, "IDAT", z.Bytes())
	writeChunk(&out, "IEND", nil)
	return out.Bytes(), nil
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
