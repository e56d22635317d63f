package synth

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"strconv"
)

// Encoding is how WritePDF stores a page image.
type Encoding int

// Encodings. At 300 dpi a letter page is about 45 KB as Bilevel and 400 KB as GreyJPEG.
const (
	Bilevel  Encoding = iota // 1 bit per pixel, FlateDecode, threshold at mid-grey: a document scanner's default
	GreyJPEG                 // 8-bit grey JPEG (DCTDecode) at JPEGQuality: a photo or greyscale scan
)

// JPEGQuality is the quality of GreyJPEG pages: high enough for Tesseract at 300 dpi.
const JPEGQuality = 80

// WritePDF writes pages as an image-only PDF, like a scanner's: each page is exactly one
// image filling a MediaBox of the image's size at dpi. The output has no dates or IDs,
// so the same pages give the same bytes.
func WritePDF(w io.Writer, pages []*image.Gray, dpi int, enc Encoding) error {
	if len(pages) == 0 {
		return errors.New("write pdf: no pages")
	}
	if dpi <= 0 {
		return fmt.Errorf("write pdf: bad dpi %d", dpi)
	}
	pw := &pdfWriter{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")

	// Objects: 1 catalog, 2 page tree, then page, content and image for each page.
	kids := ""
	for i := range pages {
		kids += fmt.Sprintf("%d 0 R ", 3+3*i)
	}
	pw.object(1, "<< /Type /Catalog /Pages 2 0 R >>")
	pw.object(2, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, len(pages)))
	var buf bytes.Buffer
	for i, img := range pages {
		page, content, image := 3+3*i, 4+3*i, 5+3*i
		wpx, hpx := img.Bounds().Dx(), img.Bounds().Dy()
		wpt, hpt := pt(wpx, dpi), pt(hpx, dpi)
		pw.object(page, fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] "+
			"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>", wpt, hpt, image, content))
		pw.stream(content, "", []byte(fmt.Sprintf("q %s 0 0 %s 0 0 cm /Im0 Do Q", wpt, hpt)))
		buf.Reset()
		filter, bpc, err := encode(&buf, img, enc)
		if err != nil {
			return fmt.Errorf("write pdf: encode page %d: %w", i+1, err)
		}
		pw.stream(image, fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d "+
			"/ColorSpace /DeviceGray /BitsPerComponent %d /Filter /%s ", wpx, hpx, bpc, filter), buf.Bytes())
	}

	xref := pw.n
	n := 3 + 3*len(pages)
	pw.printf("xref\n0 %d\n0000000000 65535 f \n", n)
	for _, off := range pw.offsets[1:n] {
		pw.printf("%010d 00000 n \n", off)
	}
	pw.printf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", n, xref)
	if pw.err != nil {
		return fmt.Errorf("write pdf: %w", pw.err)
	}
	if err := pw.w.Flush(); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	return nil
}

// encode writes img in enc to buf and returns the PDF filter and bits per component.
func encode(buf *bytes.Buffer, img *image.Gray, enc Encoding) (filter string, bpc int, err error) {
	switch enc {
	case GreyJPEG:
		return "DCTDecode", 8, jpeg.Encode(buf, img, &jpeg.Options{Quality: JPEGQuality})
	case Bilevel:
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		stride := (w + 7) / 8
		row := make([]byte, stride)
		zw, err := zlib.NewWriterLevel(buf, zlib.BestCompression)
		if err != nil {
			return "", 0, err
		}
		for y := range h {
			clear(row)
			for x, v := range img.Pix[y*img.Stride : y*img.Stride+w] {
				if v >= 128 { // 1 is white in DeviceGray
					row[x/8] |= 0x80 >> (x % 8)
				}
			}
			if _, err := zw.Write(row); err != nil {
				return "", 0, err
			}
		}
		return "FlateDecode", 1, zw.Close()
	}
	return "", 0, fmt.Errorf("unknown encoding %d", enc)
}

// pt converts pixels at dpi to PDF points, printed without a trailing ".0".
func pt(px, dpi int) string {
	return strconv.FormatFloat(float64(px)*72/float64(dpi), 'f', -1, 64)
}

// pdfWriter tracks byte offsets for the xref table and keeps the first write error.
type pdfWriter struct {
	w       *bufio.Writer
	n       int
	offsets []int // by object number; 0 unused
	err     error
}

func (p *pdfWriter) printf(format string, args ...any) {
	if p.err != nil {
		return
	}
	n, err := fmt.Fprintf(p.w, format, args...)
	p.n += n
	p.err = err
}

func (p *pdfWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.w.Write(b)
	p.n += n
	p.err = err
}

func (p *pdfWriter) mark(num int) {
	for len(p.offsets) <= num {
		p.offsets = append(p.offsets, 0)
	}
	p.offsets[num] = p.n
}

func (p *pdfWriter) object(num int, dict string) {
	p.mark(num)
	p.printf("%d 0 obj\n%s\nendobj\n", num, dict)
}

func (p *pdfWriter) stream(num int, dict string, data []byte) {
	p.mark(num)
	p.printf("%d 0 obj\n<< %s/Length %d >>\nstream\n", num, dict, len(data))
	p.write(data)
	p.printf("\nendstream\nendobj\n")
}
