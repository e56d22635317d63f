package pdfa

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/chartscan/chartscan"
)

// Page is one page as chartscan stored it after OCR: the upright image OCR read and the
// words read on it, their boxes in that image's pixels.
type Page struct {
	Image     []byte
	ImageType string // image/png, image/jpeg or image/tiff; checked against the bytes
	// Width and Height are the image's size in pixels as OCR saw it; 0 takes the image's.
	// A difference means the words were read on another image and would be misplaced,
	// so it fails the document.
	Width, Height int
	DPI           int // the image's resolution: page size in points is pixels × 72 / DPI
	Words         []chartscan.Word
}

// Meta is what the PDF says about itself, in the Info dictionary and the XMP packet.
// Nothing in it comes from the pages: metadata is read by indexers, mail gateways and
// file browsers that never open the body, so only what the caller puts here — a title
// the caller chose, which may name the patient if the caller decides so — leaves the
// page images and text.
type Meta struct {
	Title         string
	DocumentType  string // chartscan's code, e.g. chartscan.DocTypeDischargeSummary
	DateOfService string // ISO 8601, e.g. "2022-01-19"
	Producer      string // "chartscan" when empty
	ID            string // the patient document's id
	// Created is the creation and modification date. With the same pages and Meta,
	// including Created, Write produces the same bytes, so a document delivered twice is
	// the same file with the same hash. Zero means now.
	Created time.Time
}

// Page size limits of PDF 1.7 (ISO 32000-1, annex C), which PDF/A-2 holds files to.
const (
	minPagePt = 3
	maxPagePt = 14400
)

//go:embed sRGB.icc
var srgbICC []byte

// Object numbers of the objects every document has; page i (from 0) is pageObj(i), its
// content stream pageObj(i)+1 and its image pageObj(i)+2.
const (
	objCatalog = 1 + iota
	objPages
	objInfo
	objMetadata
	objOutputIntent
	objICC
	objFont
	objCIDFont
	objFontDescriptor
	objFontFile
	objCIDToGID
	objToUnicode
	objFirstPage
)

func pageObj(i int) int { return objFirstPage + 3*i }

// prepared is a page checked and encoded, ready to write.
type prepared struct {
	img      xobject
	content  []byte // Flate-compressed
	wPt, hPt float64
}

// Write writes pages as one searchable PDF/A-2b document to w: each page the scan as it
// was stored (no re-compression where PDF can carry its encoding, see prepareImage) with
// the OCR words as an invisible text layer over it, so the archive's copy looks like the
// paper and still finds the patient's name. Nothing is written if a page is unusable;
// the error names the page. Write is safe for concurrent use.
func Write(w io.Writer, meta Meta, pages []Page) error {
	if len(pages) == 0 {
		return errors.New("pdfa: no pages: a PDF needs at least one page")
	}
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	prep := make([]prepared, len(pages))
	for i, p := range pages {
		var err error
		if prep[i], err = preparePage(p); err != nil {
			return fmt.Errorf("pdfa: page %d of %d: %w", i+1, len(pages), err)
		}
	}
	fontStreams()
	d := newDocMeta(meta)

	pw := &pdfWriter{w: bufio.NewWriterSize(w, 64<<10), off: make([]int64, pageObj(len(pages)))}
	pw.raw("%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")

	kids := make([]byte, 0, 12*len(pages))
	for i := range pages {
		kids = append(kids, ' ')
		kids = strconv.AppendInt(kids, int64(pageObj(i)), 10)
		kids = append(kids, " 0 R"...)
	}
	pw.object(objCatalog, fmt.Sprintf("<< /Type /Catalog /Pages %d 0 R /Metadata %d 0 R /OutputIntents [%d 0 R] >>",
		objPages, objMetadata, objOutputIntent))
	pw.object(objPages, fmt.Sprintf("<< /Type /Pages /Kids [%s ] /Count %d >>", kids, len(pages)))
	pw.object(objInfo, infoDict(d))
	// The metadata stream stays uncompressed: PDF/A forbids a filter on it, so that tools
	// that do not parse PDF can still find and read the packet.
	pw.stream(objMetadata, "/Type /Metadata /Subtype /XML", xmpPacket(d))
	pw.object(objOutputIntent, fmt.Sprintf("<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1) "+
		"/RegistryName (http://www.color.org) /Info (sRGB IEC61966-2.1) /DestOutputProfile %d 0 R >>", objICC))
	pw.stream(objICC, "/N 3 /Alternate /DeviceRGB /Filter /FlateDecode", iccZ())

	pw.object(objFont, fmt.Sprintf("<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H "+
		"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>", fontName, objCIDFont, objToUnicode))
	pw.object(objCIDFont, fmt.Sprintf("<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s "+
		"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R "+
		"/DW %d /CIDToGIDMap %d 0 R >>", fontName, objFontDescriptor, glyphAdvance, objCIDToGID))
	// Ascent 1000 and Descent -1 (not 0, which poppler replaces with a default of -0.35
	// em) make a viewer's selection of a word run from the line's baseline, its bottom,
	// up the font size, its height: exactly the line's box.
	pw.object(objFontDescriptor, fmt.Sprintf("<< /Type /FontDescriptor /FontName /%s /Flags 5 /FontBBox [0 0 %d %d] "+
		"/ItalicAngle 0 /Ascent %d /Descent -1 /CapHeight %d /StemV 80 /FontFile2 %d 0 R >>",
		fontName, glyphAdvance, unitsPerEm, unitsPerEm, unitsPerEm, objFontFile))
	pw.stream(objFontFile, fmt.Sprintf("/Length1 %d /Filter /FlateDecode", len(fontProgram)), fontFileZ)
	pw.stream(objCIDToGID, "/Filter /FlateDecode", cidToGIDMapZ)
	pw.stream(objToUnicode, "/Filter /FlateDecode", toUnicodeZ)

	id := sha256.New()
	fmt.Fprintf(id, "%q %q %q %q %q %d\n", d.ID, d.Title, d.DocumentType, d.DateOfService, d.Producer, d.Created.Unix())
	for i, p := range prep {
		n := pageObj(i)
		pw.object(n, fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] "+
			"/Resources << /XObject << /Im0 %d 0 R >> /Font << /F0 %d 0 R >> >> /Contents %d 0 R >>",
			objPages, num(p.wPt), num(p.hPt), n+2, objFont, n+1))
		pw.stream(n+1, "/Filter /FlateDecode", p.content)
		pw.stream(n+2, "/Type /XObject /Subtype /Image "+p.img.dict, p.img.data...)
		id.Write(p.content)
		for _, b := range p.img.data {
			id.Write(b)
		}
	}
	fileID := hexString(id.Sum(nil)[:16])

	xref := pw.n
	pw.raw(fmt.Sprintf("xref\n0 %d\n0000000000 65535 f \n", len(pw.off)))
	for _, o := range pw.off[1:] {
		pw.raw(fmt.Sprintf("%010d 00000 n \n", o))
	}
	// The same ID twice: this is an original file, not an update of one.
	pw.raw(fmt.Sprintf("trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [%s %s] >>\nstartxref\n%d\n%%%%EOF\n",
		len(pw.off), objCatalog, objInfo, fileID, fileID, xref))
	if pw.err == nil {
		pw.err = pw.w.Flush()
	}
	if pw.err != nil {
		return fmt.Errorf("pdfa: writing the PDF: %w", pw.err)
	}
	return nil
}

func preparePage(p Page) (prepared, error) {
	if len(p.Image) == 0 {
		return prepared{}, errors.New("the page has no image")
	}
	if p.DPI <= 0 {
		return prepared{}, fmt.Errorf("the page has no resolution (DPI %d); its size in the PDF comes from pixels and DPI", p.DPI)
	}
	img, err := prepareImage(p.Image, p.ImageType)
	if err != nil {
		return prepared{}, err
	}
	if (p.Width != 0 || p.Height != 0) && (p.Width != img.width || p.Height != img.height) {
		return prepared{}, fmt.Errorf("the image is %d×%d pixels but the page says its words were read on %d×%d; "+
			"store the upright image OCR read (ocr.Result.Image) with the words", img.width, img.height, p.Width, p.Height)
	}
	scale := 72 / float64(p.DPI)
	wPt, hPt := float64(img.width)*scale, float64(img.height)*scale
	if wPt < minPagePt || hPt < minPagePt || wPt > maxPagePt || hPt > maxPagePt {
		return prepared{}, fmt.Errorf("%d×%d pixels at %d dpi make a page of %.1f×%.1f inches; PDF/A allows %.2f to %.0f inches a side: check the DPI stored for the page",
			img.width, img.height, p.DPI, wPt/72, hPt/72, float64(minPagePt)/72, float64(maxPagePt)/72)
	}
	content := pageContent(make([]byte, 0, 64+64*len(p.Words)), p.Words, wPt, hPt, scale)
	z, err := deflate(content)
	if err != nil {
		return prepared{}, err
	}
	return prepared{img: img, content: z, wPt: wPt, hPt: hPt}, nil
}

// pdfWriter writes numbered objects and remembers where each starts for the xref
// table. The first error sticks and ends all writing.
type pdfWriter struct {
	w   *bufio.Writer
	n   int64
	off []int64
	err error
}

func (pw *pdfWriter) raw(s string) { pw.bytes([]byte(s)) }

func (pw *pdfWriter) bytes(b []byte) {
	if pw.err != nil {
		return
	}
	m, err := pw.w.Write(b)
	pw.n += int64(m)
	pw.err = err
}

func (pw *pdfWriter) start(n int) {
	pw.off[n] = pw.n
	pw.raw(strconv.Itoa(n) + " 0 obj\n")
}

func (pw *pdfWriter) object(n int, body string) {
	pw.start(n)
	pw.raw(body)
	pw.raw("\nendobj\n")
}

func (pw *pdfWriter) stream(n int, dict string, data ...[]byte) {
	length := 0
	for _, d := range data {
		length += len(d)
	}
	pw.start(n)
	pw.raw("<< " + dict + " /Length " + strconv.Itoa(length) + " >>\nstream\n")
	for _, d := range data {
		pw.bytes(d)
	}
	pw.raw("\nendstream\nendobj\n")
}

func num(f float64) string { return string(appendNum(nil, f)) }

var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

// deflate compresses b for a FlateDecode stream. Best speed: the streams compressed here
// are small (content, fonts) or a fallback for images PDF cannot carry as they are.
func deflate(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mustDeflate(b []byte) []byte {
	z, err := deflate(b)
	if err != nil {
		panic(err) // writing to memory cannot fail
	}
	return z
}

var iccZ = sync.OnceValue(func() []byte { return mustDeflate(srgbICC) })
