package ocr

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// jbig2Segment is a JBIG2 segment (ITU T.88 §7.2) that refers to no other segment and
// belongs to page 1: segment number (4 bytes), flags (1: the type, page association in
// one byte), referred-to segment count and retention flags (1: none), page association
// (1), data length (4), data.
func jbig2Segment(number uint32, typ byte, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, number)
	b = append(b, typ&0x3f, 0, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// jbig2MMRPage wraps a CCITT T.6 (G4) bitstream of a w×h page as an embedded JBIG2 stream
// as PDF carries it (T.88 Annex D.3): a generic region may be MMR-coded, and MMR is G4,
// so the one JBIG2 encoder needed is libtiff's fax encoder. The page is its page
// information and one generic region segment: PDF (1.7, §7.4.7) leaves out the file
// header and the end-of-page and end-of-file segments, and poppler reports an
// end-of-page segment as an unknown segment type.
//
// A striped page ends with an end-of-stripe segment (§7.4.10), which chartscan does not
// take apart: that page is drawn by pdftoppm.
func jbig2MMRPage(w, h int, g4 []byte, striped bool) []byte {
	be := binary.BigEndian
	// Page information (§7.4.8): width, height, unknown resolution, flags "eventually
	// lossless", default pixel 0 (white), combination OR; not striped.
	page := be.AppendUint32(nil, uint32(w))
	page = be.AppendUint32(page, uint32(h))
	page = append(page, make([]byte, 8)...)
	page = append(page, 0x01, 0, 0)
	if striped {
		page[17], page[18] = 0x80|byte(h>>8), byte(h) // striped, stripes at most h rows
	}
	// Immediate lossless generic region (§7.4.6): the region information field (§7.4.1:
	// width, height, x, y, combination OR), then the generic region flags with MMR set
	// (MMR carries no template or adaptive pixels), then the coded data.
	region := be.AppendUint32(nil, uint32(w))
	region = be.AppendUint32(region, uint32(h))
	region = append(region, make([]byte, 8)...)
	region = append(region, 0, 0x01)
	region = append(region, g4...)
	b := append(jbig2Segment(0, 48, page), jbig2Segment(1, 39, region)...)
	if striped {
		b = append(b, jbig2Segment(2, 50, binary.BigEndian.AppendUint32(nil, uint32(h-1)))...)
	}
	return b
}

// tiffStrip returns the data of a single-strip TIFF's one strip, checking that it is G4
// (Compression 4) in the bit order T.6 is written in (FillOrder 1, the default).
func tiffStrip(t *testing.T, b []byte) []byte {
	t.Helper()
	var bo binary.ByteOrder = binary.LittleEndian
	if b[0] == 'M' {
		bo = binary.BigEndian
	}
	ifd := int(bo.Uint32(b[4:]))
	tags := map[uint16]int{}
	counts := map[uint16]uint32{}
	for i := range int(bo.Uint16(b[ifd:])) {
		e := ifd + 2 + 12*i
		tag, typ := bo.Uint16(b[e:]), bo.Uint16(b[e+2:])
		counts[tag] = bo.Uint32(b[e+4:])
		if typ == 3 { // SHORT
			tags[tag] = int(bo.Uint16(b[e+8:]))
		} else {
			tags[tag] = int(bo.Uint32(b[e+8:]))
		}
	}
	if tags[259] != 4 || (tags[266] != 0 && tags[266] != 1) || counts[273] != 1 {
		t.Fatalf("TIFF compression %d, fill order %d, %d strips: want one G4 strip, MSB first", tags[259], tags[266], counts[273])
	}
	off, n := tags[273], tags[279]
	if off+n > len(b) {
		t.Fatalf("TIFF strip %d+%d past the end (%d bytes)", off, n, len(b))
	}
	return b[off : off+n]
}

// TestReadJBIG2PDFPage makes one-page PDFs whose only image is JBIG2 (what many scanner
// drivers and PDF optimizers write), which pdfcpu cannot hand over. No JBIG2 encoder is
// installed, but a JBIG2 generic region may be MMR-coded, and MMR is G4, which libtiff
// writes. Split must hand the page over or draw it, never skip it, and it must read.
func TestReadJBIG2PDFPage(t *testing.T) {
	dir := t.TempDir()
	src := corpus + "tesseract-test/phototest.tif" // 640×480, 1 bit, 200 dpi, min-is-white
	tif := filepath.Join(dir, "g4.tif")
	if b, err := exec.Command("tiffcp", "-c", "g4", "-r", "100000", src, tif).CombinedOutput(); err != nil {
		t.Fatalf("tiffcp: %v %s", err, b)
	}
	const w, h = 640, 480
	// JBIG2's 1 is black, as min-is-white's is, so the fax data is the page as it stands.
	g4 := tiffStrip(t, readFile(t, tif))
	stream := jbig2MMRPage(w, h, g4, false)
	path := filepath.Join(dir, "jbig2.pdf")
	if err := os.WriteFile(path, imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode", w, h),
		stream, 0, 0, 230.4, 172.8}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The stream is right when poppler draws it as it draws the same pixels stored plainly
	// (1-bit grey, Flate: 0 is black).
	p, err := readPix(readFile(t, src))
	if err != nil {
		t.Fatal(err)
	}
	g := p.gray()
	p.free()
	stride := (w + 7) / 8
	bits := make([]byte, stride*h)
	for y := range h {
		for x := range w {
			if g.Pix[y*g.Stride+x] >= 128 {
				bits[y*stride+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	plain := filepath.Join(dir, "plain.pdf")
	if err := os.WriteFile(plain, imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /FlateDecode", w, h),
		flate(bits), 0, 0, 230.4, 172.8}), 0o644); err != nil {
		t.Fatal(err)
	}
	// draw renders a PDF at 200 dpi, where each image pixel is one page pixel, with
	// poppler's pdftoppm or ghostscript's pnggray device (which decodes JBIG2 with jbig2dec).
	draw := func(pdf string, gs bool) []byte {
		t.Helper()
		out := strings.TrimSuffix(pdf, ".pdf") + fmt.Sprint(gs)
		cmd := exec.Command("pdftoppm", "-r", "200", "-gray", "-png", "-singlefile", pdf, out)
		if gs {
			cmd = exec.Command("gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray", "-r200", "-o", out+".png", pdf)
		}
		// Any message (both report a bad JBIG2 stream and draw on) fails the test.
		if b, err := cmd.CombinedOutput(); err != nil || len(b) != 0 {
			t.Fatalf("%s: %v %s", cmd, err, b)
		}
		im, err := png.Decode(bytes.NewReader(readFile(t, out+".png")))
		if err != nil {
			t.Fatal(err)
		}
		if im.Bounds().Dx() != w || im.Bounds().Dy() != h {
			t.Fatalf("%s drew %v, want %dx%d", cmd, im.Bounds(), w, h)
		}
		return toGray(im).Pix // pdftoppm writes RGB PNGs even when told -gray
	}
	differ := func(a, b []byte) (n int) {
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		return n
	}
	ink := 0
	for _, v := range g.Pix {
		if v < 128 {
			ink++
		}
	}
	// The stream is right: ghostscript draws it exactly as the pixels stored plainly.
	if n := differ(draw(path, true), draw(plain, true)); n != 0 {
		t.Fatalf("ghostscript draws the JBIG2 page with %d pixels unlike the plain page's (%d dark)", n, ink)
	}
	// Poppler, which Split draws pages with, draws it too; its MMR decoder (22.12) gets a
	// few runs of this page wrong, off by 1526 pixels, where it draws the same G4 data
	// as CCITTFaxDecode exactly: near enough to read.
	if n := differ(draw(path, false), draw(plain, false)); n > ink/10 {
		t.Fatalf("pdftoppm draws the JBIG2 page with %d pixels unlike the plain page's (%d dark)", n, ink)
	}

	// An MMR page is handed over as the G4 TIFF it is; any other JBIG2 page is drawn by
	// pdftoppm, whose MMR errors cost this page a garbled line (CER 0.08).
	gt := string(readFile(t, corpus+"tesseract-test/phototest.txt"))
	for _, tc := range []struct {
		name    string
		striped bool
		shape   pageShape
		maxCER  float64
	}{
		{"mmr", false, pageShape{1, 640, 480, 200, "image/tiff", false}, 0.02},
		{"striped", true, pageShape{1, 960, 720, 300, "image/png", true}, 0.12},
	} {
		pdf := filepath.Join(dir, tc.name+".pdf")
		if err := os.WriteFile(pdf, imagePDF(230.4, 172.8, pdfImage{fmt.Sprintf("/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode", w, h),
			jbig2MMRPage(w, h, g4, tc.striped), 0, 0, 230.4, 172.8}), 0o644); err != nil {
			t.Fatal(err)
		}
		pages, res := readPages(t, pdf)
		if diff := cmp.Diff([]pageShape{tc.shape}, shapes(pages)); diff != "" {
			t.Errorf("%s: split (-want +got):\n%s", tc.name, diff)
			continue
		}
		if c := cer(res[0].Text, gt); c > tc.maxCER || res[0].Blank {
			t.Errorf("%s: CER %.3f (want ≤ %.2f), blank %v:\n%s", tc.name, c, tc.maxCER, res[0].Blank, res[0].Text)
		}
	}
}
