package pdfa

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
	"golang.org/x/image/font/sfnt"
)

// tool runs a command-line tool the tests check the PDF with and returns its standard
// output; a missing tool fails the test with the package that brings it.
func tool(t testing.TB, pkg string, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (apt-get install %s; make test installs it): %v", name, pkg, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" && (name == "pdftotext" || name == "pdfinfo" || name == "pdfimages") {
		// poppler prints syntax errors it recovered from on stderr: none are acceptable.
		t.Errorf("%s %s complained: %s", name, strings.Join(args, " "), s)
	}
	return stdout.String()
}

// writePDF writes pages to a file in the test's temporary directory.
func writePDF(t testing.TB, meta Meta, pages []Page) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, meta, pages); err != nil {
		t.Fatalf("Write: %v", err)
	}
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bboxWord is a word as pdftotext -bbox reports it, in points from the top left.
type bboxWord struct {
	text                   string
	xMin, yMin, xMax, yMax float64
}

var (
	bboxPageRE = regexp.MustCompile(`<page width="([0-9.]+)" height="([0-9.]+)">`)
	bboxWordRE = regexp.MustCompile(`<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">(.*?)</word>`)
)

// bboxPages runs pdftotext -bbox and returns each page's words.
func bboxPages(t testing.TB, path string) [][]bboxWord {
	out := tool(t, "poppler-utils", "pdftotext", "-bbox", path, "-")
	var pages [][]bboxWord
	for _, chunk := range bboxPageRE.Split(out, -1)[1:] {
		var ws []bboxWord
		for _, m := range bboxWordRE.FindAllStringSubmatch(chunk, -1) {
			f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
			ws = append(ws, bboxWord{html.UnescapeString(m[5]), f(m[1]), f(m[2]), f(m[3]), f(m[4])})
		}
		pages = append(pages, ws)
	}
	return pages
}

// xmpProps parses an XMP packet into property values keyed "namespace local": the text
// of each property element, of the rdf:li items of an array property, or of the fields
// of a structure, each under its own element. XML that is not well-formed fails.
func xmpProps(packet []byte) (map[string][]string, error) {
	const rdfNS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
	d := xml.NewDecoder(bytes.NewReader(packet))
	props := map[string][]string{}
	var stack []xml.Name
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return props, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok.Name)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			s := strings.TrimSpace(string(tok))
			if s == "" {
				continue
			}
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].Space != rdfNS {
					k := stack[i].Space + " " + stack[i].Local
					props[k] = append(props[k], s)
					break
				}
			}
		}
	}
}

// The XMP properties the checks read.
const (
	xmpPart        = "http://www.aiim.org/pdfa/ns/id/ part"
	xmpConformance = "http://www.aiim.org/pdfa/ns/id/ conformance"
	xmpTitle       = "http://purl.org/dc/elements/1.1/ title"
	xmpDescription = "http://purl.org/dc/elements/1.1/ description"
	xmpProducer    = "http://ns.adobe.com/pdf/1.3/ Producer"
	xmpKeywords    = "http://ns.adobe.com/pdf/1.3/ Keywords"
	xmpCreatorTool = "http://ns.adobe.com/xap/1.0/ CreatorTool"
	xmpCreateDate  = "http://ns.adobe.com/xap/1.0/ CreateDate"
	xmpModifyDate  = "http://ns.adobe.com/xap/1.0/ ModifyDate"
	xmpSchemaNS    = "http://www.aiim.org/pdfa/ns/schema# namespaceURI"
	xmpSchemaPfx   = "http://www.aiim.org/pdfa/ns/schema# prefix"
	xmpPropName    = "http://www.aiim.org/pdfa/ns/property# name"
)

// reporter is the part of *testing.T the PDF/A checks use, so that a test can run them
// on a broken file and see that they fail.
type reporter interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// pdfaReport is what checkPDFA read from a file, for further assertions.
type pdfaReport struct {
	xmp  map[string][]string
	info map[string]string
}

// checkPDFA makes, in Go, the structural checks OCRmyPDF's test suite and its
// file_claims_pdfa make on a PDF/A file (pikepdf opens the file and reads the XMP
// pdfaid part and conformance), plus the PDF/A-2b rules a file writer can break without
// any viewer noticing:
//
//   - the header is %PDF-1.x followed by a comment of four bytes above 127;
//   - the trailer has an ID of two strings and no Encrypt;
//   - the catalog's Metadata stream is unfiltered and is well-formed XMP claiming
//     pdfaid:part 2 and pdfaid:conformance B;
//   - every Info entry with an XMP equivalent has the same value there, dates as the
//     same instant;
//   - every property outside the predefined schemas is described by an extension
//     schema;
//   - there is exactly one output intent, GTS_PDFA1, with an RGB ICC profile;
//   - every font every page uses is embedded, and the TrueType program parses;
//   - no stream uses LZW (or any filter outside the PDF/A-2 set), no image interpolates,
//     no JavaScript, no transparency groups or soft masks;
//   - pdfcpu validates the file in strict mode.
func checkPDFA(t reporter, path string) pdfaReport {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^%PDF-1\.[0-7]\r?\n%`).Match(raw) || !highBytes(raw[bytes.IndexByte(raw, '\n')+2:][:4]) {
		t.Errorf("header %q: want %%PDF-1.n and a comment of four bytes above 127", raw[:min(len(raw), 16)])
	}

	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationStrict
	if err := api.ValidateFile(path, conf); err != nil {
		t.Fatalf("pdfcpu validate (strict): %v", err)
	}
	ctx, err := api.ReadContextFile(path)
	if err != nil {
		t.Fatalf("pdfcpu read: %v", err)
	}
	xt := ctx.XRefTable
	if xt.Encrypt != nil {
		t.Error("the trailer has an Encrypt entry: PDF/A forbids encryption")
	}
	if len(xt.ID) != 2 {
		t.Errorf("trailer ID %v: want two strings", xt.ID)
	}

	cat, err := xt.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	msd, _, err := xt.DereferenceStreamDict(cat["Metadata"])
	if err != nil || msd == nil {
		t.Fatalf("catalog Metadata: %v (want an XMP stream)", err)
	}
	if _, ok := msd.Find("Filter"); ok {
		t.Error("the metadata stream has a Filter: PDF/A wants it readable as it is")
	}
	if err := msd.Decode(); err != nil {
		t.Fatal(err)
	}
	packet := msd.Content
	if !bytes.HasPrefix(packet, []byte("<?xpacket begin=")) || !bytes.HasSuffix(bytes.TrimSpace(packet), []byte("<?xpacket end=\"w\"?>")) {
		t.Error("the XMP packet lacks its xpacket header or trailer")
	}
	if bytes.Contains(packet[:bytes.IndexByte(packet, '>')], []byte("bytes=")) || bytes.Contains(packet[:bytes.IndexByte(packet, '>')], []byte("encoding=")) {
		t.Error("the xpacket header has a bytes or encoding attribute, which PDF/A forbids")
	}
	props, err := xmpProps(packet)
	if err != nil {
		t.Fatalf("the XMP packet is not well-formed XML: %v", err)
	}
	if got := props[xmpPart]; len(got) != 1 || got[0] != "2" {
		t.Errorf("pdfaid:part %v, want 2", got)
	}
	if got := props[xmpConformance]; len(got) != 1 || got[0] != "B" {
		t.Errorf("pdfaid:conformance %v, want B", got)
	}
	predefined := map[string]bool{
		"http://www.aiim.org/pdfa/ns/id/": true, "http://purl.org/dc/elements/1.1/": true,
		"http://ns.adobe.com/xap/1.0/": true, "http://ns.adobe.com/pdf/1.3/": true,
		"http://ns.adobe.com/xap/1.0/mm/": true, "http://www.aiim.org/pdfa/ns/extension/": true,
		"http://www.aiim.org/pdfa/ns/schema#": true, "http://www.aiim.org/pdfa/ns/property#": true,
	}
	described := map[string]bool{}
	for _, ns := range props[xmpSchemaNS] {
		described[ns] = true
	}
	names := map[string]bool{}
	for _, n := range props[xmpPropName] {
		names[n] = true
	}
	for k := range props {
		ns, local, _ := strings.Cut(k, " ")
		if !predefined[ns] && (!described[ns] || !names[local]) {
			t.Errorf("XMP property %s:%s is in no predefined schema and no extension schema describes it", ns, local)
		}
	}

	info := map[string]string{}
	if xt.Info != nil {
		d, err := xt.DereferenceDict(*xt.Info)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range d {
			s, err := xt.DereferenceText(v)
			if err != nil {
				t.Errorf("Info /%s: %v", k, err)
			}
			info[k] = s
		}
	}
	for key, prop := range map[string]string{"Title": xmpTitle, "Subject": xmpDescription, "Keywords": xmpKeywords,
		"Producer": xmpProducer, "Creator": xmpCreatorTool} {
		if v, ok := info[key]; ok {
			if got := props[prop]; len(got) != 1 || got[0] != v {
				t.Errorf("Info /%s %q but XMP %s %v: PDF/A wants them equal", key, v, prop, got)
			}
		}
	}
	for key, prop := range map[string]string{"CreationDate": xmpCreateDate, "ModDate": xmpModifyDate} {
		v, ok := info[key]
		if !ok {
			continue
		}
		it, ok := types.DateTime(v, false)
		if !ok {
			t.Errorf("Info /%s %q is not a PDF date", key, v)
			continue
		}
		got := props[prop]
		if len(got) != 1 {
			t.Errorf("Info /%s without XMP %s", key, prop)
			continue
		}
		xt, err := time.Parse(time.RFC3339, got[0])
		if err != nil || !xt.Equal(it) {
			t.Errorf("Info /%s %q and XMP %s %q are not the same instant", key, v, prop, got[0])
		}
	}

	intents := cat.ArrayEntry("OutputIntents")
	if intents == nil {
		if o, ok := cat.Find("OutputIntents"); ok {
			intents, _ = xt.DereferenceArray(o)
		}
	}
	if len(intents) != 1 {
		t.Fatalf("%d output intents, want one", len(intents))
	}
	oi, err := xt.DereferenceDict(intents[0])
	if err != nil {
		t.Fatal(err)
	}
	if s := oi.NameEntry("S"); s == nil || *s != "GTS_PDFA1" {
		t.Errorf("output intent /S %v, want /GTS_PDFA1", s)
	}
	icc, _, err := xt.DereferenceStreamDict(oi["DestOutputProfile"])
	if err != nil || icc == nil {
		t.Fatalf("output intent without a DestOutputProfile: %v", err)
	}
	if err := icc.Decode(); err != nil {
		t.Fatal(err)
	}
	if p := icc.Content; len(p) < 128 || string(p[36:40]) != "acsp" || string(p[16:20]) != "RGB " || p[8] > 4 {
		t.Error("DestOutputProfile is not an RGB ICC profile of version 2 to 4")
	}
	if n := icc.IntEntry("N"); n == nil || *n != 3 {
		t.Errorf("ICC profile /N %v, want 3", n)
	}

	for pg := 1; pg <= xt.PageCount; pg++ {
		pd, _, _, err := xt.PageDict(pg, false)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := xt.DereferenceDict(pd["Resources"])
		fonts, _ := xt.DereferenceDict(res["Font"])
		for name, ref := range fonts {
			checkFontEmbedded(t, xt, pg, name, ref)
		}
		if _, ok := pd.Find("Group"); ok {
			t.Errorf("page %d has a transparency group", pg)
		}
	}

	allowed := map[string]bool{"FlateDecode": true, "DCTDecode": true, "CCITTFaxDecode": true,
		"RunLengthDecode": true, "ASCIIHexDecode": true, "ASCII85Decode": true, "JPXDecode": true, "JBIG2Decode": true}
	for nr, e := range xt.Table {
		if e == nil || e.Free || e.Object == nil {
			continue
		}
		var d types.Dict
		switch o := e.Object.(type) {
		case types.Dict:
			d = o
		case types.StreamDict:
			d = o.Dict
			for _, f := range o.FilterPipeline {
				if !allowed[f.Name] {
					t.Errorf("object %d uses filter %s, which PDF/A-2 forbids", nr, f.Name)
				}
			}
		default:
			continue
		}
		if b := d.BooleanEntry("Interpolate"); b != nil && *b {
			t.Errorf("object %d: an image with Interpolate true", nr)
		}
		for _, k := range []string{"JS", "JavaScript", "SMask", "AA", "OPI", "Alternates"} {
			if _, ok := d.Find(k); ok {
				t.Errorf("object %d has /%s", nr, k)
			}
		}
	}
	return pdfaReport{xmp: props, info: info}
}

func checkFontEmbedded(t reporter, xt *model.XRefTable, page int, name string, ref types.Object) {
	t.Helper()
	font, err := xt.DereferenceDict(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc := font
	if st := font.NameEntry("Subtype"); st != nil && *st == "Type0" {
		arr, _ := xt.DereferenceArray(font["DescendantFonts"])
		if len(arr) != 1 {
			t.Fatalf("page %d font %s: %d descendant fonts", page, name, len(arr))
		}
		if desc, err = xt.DereferenceDict(arr[0]); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := xt.DereferenceDict(desc["FontDescriptor"])
	if err != nil || fd == nil {
		t.Fatalf("page %d font %s has no font descriptor", page, name)
	}
	var prog *types.StreamDict
	for _, k := range []string{"FontFile", "FontFile2", "FontFile3"} {
		if o, ok := fd.Find(k); ok {
			prog, _, _ = xt.DereferenceStreamDict(o)
		}
	}
	if prog == nil {
		t.Fatalf("page %d font %s is not embedded: PDF/A wants every font embedded, even for invisible text", page, name)
	}
	if err := prog.Decode(); err != nil {
		t.Fatal(err)
	}
	if _, err := sfnt.Parse(prog.Content); err != nil {
		t.Errorf("page %d font %s: the embedded TrueType program does not parse: %v", page, name, err)
	}
	if l1 := prog.IntEntry("Length1"); l1 == nil || *l1 != len(prog.Content) {
		t.Errorf("page %d font %s: FontFile2 /Length1 %v, program is %d bytes", page, name, l1, len(prog.Content))
	}
}

// pikepdfCheck opens the file with pikepdf (qpdf), as OCRmyPDF's own tests do, and
// reports qpdf's structural problems, the pdfaid status pikepdf reads from the XMP
// ("2B" for PDF/A-2b) and OCRmyPDF's own verdict, ocrmypdf.pdfa.file_claims_pdfa. The
// Debian python3 is used: python3-pikepdf and ocrmypdf are its packages.
func pikepdfCheck(t *testing.T, path string) (problems []string, status, conformance string) {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	const script = `
import sys, pikepdf
from ocrmypdf.pdfa import file_claims_pdfa
with pikepdf.open(sys.argv[1]) as pdf:
    for p in pdf.check():
        print("problem:", p)
    with pdf.open_metadata() as m:
        print("status:", m.pdfa_status)
print("claims:", file_claims_pdfa(sys.argv[1])["conformance"])
`
	out := tool(t, "ocrmypdf python3-pikepdf", py, "-c", script, path)
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "problem":
			problems = append(problems, v)
		case "status":
			status = v
		case "claims":
			conformance = v
		}
	}
	return problems, status, conformance
}

func highBytes(b []byte) bool {
	for _, c := range b {
		if c < 128 {
			return false
		}
	}
	return len(b) == 4
}

// extractImage returns the image of page n as pdfimages -png decodes it from the PDF
// (through the image's filters, decode parameters and colour space): a check of the
// stream independent of any renderer's resampling.
func extractImage(t testing.TB, path string, n int) image.Image {
	t.Helper()
	dir := t.TempDir()
	tool(t, "poppler-utils", "pdfimages", "-png", "-f", strconv.Itoa(n), "-l", strconv.Itoa(n), path, filepath.Join(dir, "i"))
	f, err := os.Open(filepath.Join(dir, "i-000.png"))
	if err != nil {
		t.Fatalf("pdfimages extracted no image from page %d: %v", n, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// renderGrey renders page n of the PDF at dpi with pdftoppm as 8-bit grey.
func renderGrey(t testing.TB, path string, n, dpi int) *image.Gray {
	t.Helper()
	dir := t.TempDir()
	tool(t, "poppler-utils", "pdftoppm", "-r", strconv.Itoa(dpi), "-gray", "-f", strconv.Itoa(n), "-l", strconv.Itoa(n),
		"-singlefile", path, filepath.Join(dir, "p"))
	b, err := os.ReadFile(filepath.Join(dir, "p.pgm"))
	if err != nil {
		t.Fatal(err)
	}
	var w, h, maxv int
	var off int
	fields := 0
	i := 2
	for fields < 3 {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		v, _ := strconv.Atoi(string(b[i:j]))
		switch fields {
		case 0:
			w = v
		case 1:
			h = v
		case 2:
			maxv = v
		}
		fields++
		i = j
	}
	off = i + 1
	if string(b[:2]) != "P5" || maxv != 255 || len(b) < off+w*h {
		t.Fatalf("pdftoppm wrote an unexpected PGM (%q, %dx%d, max %d)", b[:2], w, h, maxv)
	}
	return &image.Gray{Pix: b[off : off+w*h], Stride: w, Rect: image.Rect(0, 0, w, h)}
}

// greyDiff compares two grey images of the same size: the mean absolute difference and
// the share of pixels differing by more than 64 levels.
func greyDiff(a, b *image.Gray) (mean, far float64, err error) {
	if a.Rect.Size() != b.Rect.Size() {
		return 0, 0, fmt.Errorf("sizes differ: %v and %v", a.Rect.Size(), b.Rect.Size())
	}
	w, h := a.Rect.Dx(), a.Rect.Dy()
	var sum, n int
	for y := range h {
		for x := range w {
			d := int(a.Pix[y*a.Stride+x]) - int(b.Pix[y*b.Stride+x])
			if d < 0 {
				d = -d
			}
			sum += d
			if d > 64 {
				n++
			}
		}
	}
	return float64(sum) / float64(w*h), float64(n) / float64(w*h), nil
}

// recorder is a reporter that collects failures; Fatal ends the goroutine, as
// testing.T's does.
type recorder struct{ failures []string }

func (r *recorder) Helper()                           {}
func (r *recorder) Error(args ...any)                 { r.failures = append(r.failures, fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }

// runCheckPDFA runs checkPDFA on path and returns its failures.
func runCheckPDFA(path string) []string {
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkPDFA(rec, path)
	}()
	<-done
	return rec.failures
}
