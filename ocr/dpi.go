package ocr

import (
	"bytes"
	"encoding/binary"
)

// Kind is a scan's file format, told by its first bytes rather than its name.
type Kind string

// The file formats chartscan reads.
const (
	KindPDF     Kind = "pdf"
	KindTIFF    Kind = "tiff"
	KindPNG     Kind = "png"
	KindJPEG    Kind = "jpeg"
	KindUnknown Kind = ""
)

// Sniff tells a file's format from its first bytes.
func Sniff(head []byte) Kind {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return KindPDF
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return KindTIFF
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return KindPNG
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return KindJPEG
	}
	// Some scanners put junk before the PDF header; readers accept it within 1 KiB.
	if i := bytes.Index(head, []byte("%PDF-")); i >= 0 && i < 1024 {
		return KindPDF
	}
	return KindUnknown
}

// MIMEType is the media type of a file of kind k.
func (k Kind) MIMEType() string {
	switch k {
	case KindPDF:
		return "application/pdf"
	case KindTIFF:
		return "image/tiff"
	case KindPNG:
		return "image/png"
	case KindJPEG:
		return "image/jpeg"
	}
	return "application/octet-stream"
}

// headerDPI reads the resolution an image file declares in its header: PNG pHYs, JPEG
// JFIF density, TIFF XResolution. It returns 0 when the header declares none. Tesseract
// must be given the real resolution: without one it misjudges text size, and an image
// with none came back as "Empty page!!".
func headerDPI(k Kind, b []byte) int {
	switch k {
	case KindPNG:
		return pngDPI(b)
	case KindJPEG:
		return jpegDPI(b)
	case KindTIFF:
		return tiffDPI(b)
	}
	return 0
}

func pngDPI(b []byte) int {
	for i := 8; i+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if typ == "pHYs" && n == 9 && i+17 <= len(b) {
			ppu := binary.BigEndian.Uint32(b[i+8:])
			if b[i+16] == 1 { // unit: metre
				return int(float64(ppu)*0.0254 + 0.5)
			}
			return 0
		}
		if typ == "IDAT" || n < 0 {
			return 0
		}
		i += 12 + n
	}
	return 0
}

func jpegDPI(b []byte) int {
	// JFIF APP0: FF E0 len "JFIF\0" ver(2) units(1) xdensity(2) ydensity(2)
	if len(b) < 20 || b[2] != 0xFF || b[3] != 0xE0 || string(b[6:11]) != "JFIF\x00" {
		return 0
	}
	units, x := b[13], int(binary.BigEndian.Uint16(b[14:]))
	switch units {
	case 1:
		return x
	case 2:
		return int(float64(x)*2.54 + 0.5)
	}
	return 0
}

func tiffDPI(b []byte) int {
	if len(b) < 8 {
		return 0
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if b[0] == 'M' {
		bo = binary.BigEndian
	}
	ifd := int(bo.Uint32(b[4:]))
	if ifd+2 > len(b) {
		return 0
	}
	n := int(bo.Uint16(b[ifd:]))
	var xres float64
	unit := 2 // inch, TIFF's default
	for i := 0; i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(b) {
			break
		}
		tag := bo.Uint16(b[e:])
		switch tag {
		case 282: // XResolution, RATIONAL at an offset
			off := int(bo.Uint32(b[e+8:]))
			if off+8 <= len(b) {
				num, den := bo.Uint32(b[off:]), bo.Uint32(b[off+4:])
				if den != 0 {
					xres = float64(num) / float64(den)
				}
			}
		case 296: // ResolutionUnit, SHORT inline
			unit = int(bo.Uint16(b[e+8:]))
		}
	}
	switch unit {
	case 2:
		return int(xres + 0.5)
	case 3:
		return int(xres*2.54 + 0.5)
	}
	return 0
}

// declaredDPI is the resolution an image declares, or 0 when it declares none worth
// believing. 72 and 96 are the screen defaults encoders write when they know nothing
// (Go's own TIFF encoder writes 72); no document scanner scans at either.
func declaredDPI(k Kind, b []byte) int {
	d := headerDPI(k, b)
	if d < 50 || d == 72 || d == 96 {
		return 0
	}
	return d
}

// guessDPI is the resolution assumed for an image that declares none: the width of a
// US-letter page, the commonest chart page, clamped to what scanners produce.
func guessDPI(widthPx int) int {
	return min(max(int(float64(widthPx)/8.5+0.5), 100), 600)
}

// tiffSize reads ImageWidth and ImageLength from a TIFF's first directory.
func tiffSize(b []byte) (w, h int) {
	if len(b) < 8 {
		return 0, 0
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if b[0] == 'M' {
		bo = binary.BigEndian
	}
	ifd := int(bo.Uint32(b[4:]))
	if ifd+2 > len(b) {
		return 0, 0
	}
	n := int(bo.Uint16(b[ifd:]))
	for i := 0; i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > len(b) {
			break
		}
		tag, typ := bo.Uint16(b[e:]), bo.Uint16(b[e+2:])
		var v int
		if typ == 3 { // SHORT
			v = int(bo.Uint16(b[e+8:]))
		} else {
			v = int(bo.Uint32(b[e+8:]))
		}
		switch tag {
		case 256:
			w = v
		case 257:
			h = v
		}
	}
	return w, h
}
