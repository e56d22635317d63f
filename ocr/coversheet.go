package ocr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	"golang.org/x/text/encoding/charmap"
)

// CoverPrefix starts the payload of a chartscan cover sheet's barcodes.
const CoverPrefix = "CHARTSCAN:"

// DefaultSeparator is the value of a separator sheet's barcode: the Code 39 text printed
// on PATCH-T sheets.
const DefaultSeparator = "PATCHT"

// CoversheetInfo is what a cover sheet shows: the patient in human-readable form and, in
// its barcodes, the MRN, document type and date of service.
type CoversheetInfo struct {
	MRN       string // required
	Family    string
	Given     string
	BirthDate string // as it should be printed, e.g. 1961-04-02
	DocType   string // optional: the document type the sheet files the pages under
	DOS       string // optional: date of service, YYYY-MM-DD
	// Prefix starts the barcode payload: the facility's CHARTSCAN_COVER_PREFIX, the one
	// the reader looks for; CoverPrefix when empty.
	Prefix string
}

// CoverInfo is what a cover sheet's barcode says.
type CoverInfo struct {
	MRN     string
	DocType string
	DOS     string
}

// ErrCoverField reports a cover sheet field that cannot go into a barcode payload.
var ErrCoverField = errors.New("cover sheet field not allowed")

var (
	payloadValue = regexp.MustCompile(`^[\x21-\x7e]+$`) // printable ASCII, no space
	isoDate      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// Payload is the barcode payload of a cover sheet:
// <prefix>MRN=<mrn>[;DOC=<type>][;DOS=<date>], the prefix CHARTSCAN: by default.
func (c CoversheetInfo) Payload() (string, error) {
	prefix := c.Prefix
	if prefix == "" {
		prefix = CoverPrefix
	}
	if !payloadValue.MatchString(prefix) {
		return "", fmt.Errorf("%w: the cover sheet prefix must be printable ASCII without spaces", ErrCoverField)
	}
	check := func(name, v string, required bool) error {
		if v == "" && !required {
			return nil
		}
		if !payloadValue.MatchString(v) || strings.ContainsAny(v, ";=") {
			return fmt.Errorf("%w: %s must be printable ASCII without spaces, ';' or '='", ErrCoverField, name)
		}
		return nil
	}
	if err := check("MRN", c.MRN, true); err != nil {
		return "", err
	}
	if err := check("document type", c.DocType, false); err != nil {
		return "", err
	}
	if c.DOS != "" && !isoDate.MatchString(c.DOS) {
		return "", fmt.Errorf("%w: date of service must be YYYY-MM-DD", ErrCoverField)
	}
	p := prefix + "MRN=" + c.MRN
	if c.DocType != "" {
		p += ";DOC=" + c.DocType
	}
	if c.DOS != "" {
		p += ";DOS=" + c.DOS
	}
	return p, nil
}

// ParseCoverPayload reads a cover sheet barcode's text. prefix is the payload's prefix
// ("" means CoverPrefix), so a site whose existing cover sheets use another prefix can
// configure it; the prefix is matched without regard to case. It reports false for text
// that is not a cover sheet payload or that lacks an MRN.
func ParseCoverPayload(s, prefix string) (CoverInfo, bool) {
	if prefix == "" {
		prefix = CoverPrefix
	}
	s = strings.TrimSpace(s)
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return CoverInfo{}, false
	}
	var c CoverInfo
	for _, kv := range strings.Split(s[len(prefix):], ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return CoverInfo{}, false
		}
		v = strings.TrimSpace(v)
		switch strings.ToUpper(strings.TrimSpace(k)) {
		case "MRN":
			c.MRN = v
		case "DOC":
			c.DocType = v
		case "DOS":
			if !isoDate.MatchString(v) {
				return CoverInfo{}, false
			}
			c.DOS = v
		} // other keys are for later versions
	}
	if c.MRN == "" {
		return CoverInfo{}, false
	}
	return c, true
}

// CoverSheet returns the first cover sheet payload among a page's barcodes.
func CoverSheet(bs []Barcode, prefix string) (CoverInfo, bool) {
	for _, b := range bs {
		if c, ok := ParseCoverPayload(b.Text, prefix); ok {
			return c, true
		}
	}
	return CoverInfo{}, false
}

// IsSeparator tells whether one of a page's barcodes is a separator sheet's: its text
// equals value ("" means DefaultSeparator, PATCH-T) ignoring case, spaces, hyphens and
// underscores. (The Kodak patch code bars themselves are not decoded; separator sheets
// carry the value in Code 39 as well.)
func IsSeparator(bs []Barcode, value string) bool {
	if value == "" {
		value = DefaultSeparator
	}
	norm := strings.NewReplacer(" ", "", "-", "", "_", "")
	want := strings.ToUpper(norm.Replace(value))
	for _, b := range bs {
		if strings.ToUpper(norm.Replace(strings.TrimSpace(b.Text))) == want {
			return true
		}
	}
	return false
}

// Coversheet writes a one-page US-letter PDF cover sheet for a document: the patient's
// name, date of birth, MRN, document type and date of service in print, and the payload
// (see CoversheetInfo.Payload) as a Code 128 barcode and a QR code, so that a page
// scanned from it files the pages behind it. It is drawn in vector, sharp at any scan
// resolution.
func Coversheet(w io.Writer, c CoversheetInfo) error {
	payload, err := c.Payload()
	if err != nil {
		return err
	}
	var s bytes.Buffer // page content, in points from the bottom left
	text := func(font string, size, x, y float64, str string) {
		fmt.Fprintf(&s, "BT /%s %.1f Tf %.2f %.2f Td (%s) Tj ET\n", font, size, x, y, pdfString(str))
	}
	text("F2", 22, 72, 720, "Chart cover sheet")
	text("F1", 11, 72, 700, "Scan this page in front of the document it belongs to.")
	y := 660.0
	name := strings.TrimSpace(strings.TrimSpace(c.Family) + ", " + strings.TrimSpace(c.Given))
	name = strings.Trim(name, ", ")
	for _, row := range [][2]string{
		{"Patient", name}, {"Date of birth", c.BirthDate}, {"MRN", c.MRN},
		{"Document type", c.DocType}, {"Date of service", c.DOS},
	} {
		if row[1] == "" {
			continue
		}
		text("F1", 14, 72, y, row[0]+":")
		text("F2", 14, 200, y, row[1])
		y -= 24
	}
	// Code 128, full width: bars of at least 0.8 pt (3.3 pixels at 300 dpi).
	m, err := oned.NewCode128Writer().Encode(payload, gozxing.BarcodeFormat_CODE_128, 0, 0, nil)
	if err != nil {
		return fmt.Errorf("code 128: %w", err)
	}
	mw := min(1.5, 468/float64(m.GetWidth()))
	x0 := 72 + (468-mw*float64(m.GetWidth()))/2
	for x := 0; x < m.GetWidth(); {
		if !m.Get(x, 0) {
			x++
			continue
		}
		x1 := x
		for x1 < m.GetWidth() && m.Get(x1, 0) {
			x1++
		}
		fmt.Fprintf(&s, "%.3f %.3f %.3f %.3f re\n", x0+mw*float64(x), 400.0, mw*float64(x1-x), 72.0)
		x = x1
	}
	s.WriteString("f\n")
	text("F3", 10, 72, 384, payload)
	// QR code, 3 pt modules.
	q, err := qrcode.NewQRCodeWriter().Encode(payload, gozxing.BarcodeFormat_QR_CODE, 0, 0,
		map[gozxing.EncodeHintType]interface{}{gozxing.EncodeHintType_ERROR_CORRECTION: "M", gozxing.EncodeHintType_MARGIN: 0})
	if err != nil {
		return fmt.Errorf("qr code: %w", err)
	}
	const mod = 3.0
	qx, qy := 72.0, 120.0+mod*float64(q.GetHeight())
	for yy := 0; yy < q.GetHeight(); yy++ {
		for xx := 0; xx < q.GetWidth(); xx++ {
			if q.Get(xx, yy) {
				fmt.Fprintf(&s, "%.2f %.2f %.2f %.2f re\n", qx+mod*float64(xx), qy-mod*float64(yy+1), mod, mod)
			}
		}
	}
	s.WriteString("f\n")
	return writePDF(w, s.Bytes())
}

// pdfString encodes s for a PDF literal string in WinAnsi, the encoding of the standard
// fonts: names with accents print; characters outside it print as '?'.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		c, ok := charmap.Windows1252.EncodeRune(r)
		if !ok {
			c = '?'
		}
		switch c {
		case '(', ')', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			if c < 0x20 || c > 0x7e {
				fmt.Fprintf(&b, "\\%03o", c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// writePDF writes a one-page letter PDF with content and Helvetica, Helvetica-Bold and
// Courier as F1, F2, F3.
func writePDF(w io.Writer, content []byte) error {
	font := func(name string) string {
		return "<< /Type /Font /Subtype /Type1 /BaseFont /" + name + " /Encoding /WinAnsiEncoding >>"
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
			"/Resources << /Font << /F1 5 0 R /F2 6 0 R /F3 7 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		font("Helvetica"), font("Helvetica-Bold"), font("Courier"),
	}
	_, err := w.Write(pdfFile("1.4", objs))
	return err
}

// pdfFile lays out numbered objects (1 is the catalog) as a PDF file of the given
// version, with the cross-reference table a reader needs.
func pdfFile(version string, objs []string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-" + version + "\n%\xe2\xe3\xcf\xd3\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return b.Bytes()
}
