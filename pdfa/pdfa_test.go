package pdfa

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/ocr"
)

func chartMeta(cps []chartPage) Meta {
	return Meta{
		Title:         "Radiology report",
		DocumentType:  cps[0].docType,
		DateOfService: cps[0].dos,
		ID:            "pdoc-0001",
		Created:       time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC),
	}
}

// The OCR words are in the PDF as text: pdftotext finds the patient's name and MRN on
// the page where OCR read them, and pdftotext -bbox puts every word where OCR's box
// was, scaled from pixels to points: across, the word's box; down, its line's.
func TestTextLayerHasTheOCRWordsWhereOCRFoundThem(t *testing.T) {
	cps := chartPages(t)
	path := writePDF(t, chartMeta(cps), pagesOf(cps))

	for i, cp := range cps {
		text := tool(t, "poppler-utils", "pdftotext", "-f", strconv.Itoa(i+1), "-l", strconv.Itoa(i+1), "-layout", path, "-")
		read := strings.ToUpper(ocr.Text(cp.Words))
		for _, s := range []string{strings.ToUpper(cp.family), cp.mrn} {
			if s != "" && strings.Contains(read, s) && !strings.Contains(strings.ToUpper(text), s) {
				t.Errorf("page %d (%s p%d): OCR read %q but pdftotext does not find it:\n%s", i+1, cp.file, cp.number, s, text)
			}
		}
		if i == 0 && (!strings.Contains(read, strings.ToUpper(cp.family)) || !strings.Contains(read, cp.mrn)) {
			t.Fatalf("OCR did not read the patient's name %q and MRN %s on page 1; the sample or the reader changed", cp.family, cp.mrn)
		}
	}

	pages := bboxPages(t, path)
	if len(pages) != len(cps) {
		t.Fatalf("pdftotext -bbox found %d pages, want %d", len(pages), len(cps))
	}
	for i, cp := range cps {
		s := 72 / float64(cp.DPI)
		lines := map[[2]int]chartscan.Box{}
		for _, w := range cp.Words {
			k := [2]int{w.Block, w.Line}
			lines[k] = lines[k].Union(w.Box)
		}
		unused := append([]bboxWord(nil), pages[i]...)
		matched, nameAt := 0, -1
		var misplaced []string
		for _, w := range cp.Words {
			x0, x1 := float64(w.Box.X0)*s, float64(w.Box.X1)*s
			line := lines[[2]int{w.Block, w.Line}]
			y0, y1 := float64(line.Y0)*s, float64(line.Y1)*s
			best, bestD := -1, math.Inf(1)
			for j, b := range unused {
				if b.text != w.Text {
					continue
				}
				if d := math.Abs(b.xMin-x0) + math.Abs(b.xMax-x1) + math.Abs(b.yMax-y1); d < bestD {
					best, bestD = j, d
				}
			}
			if best < 0 {
				continue
			}
			b := unused[best]
			unused = append(unused[:best], unused[best+1:]...)
			// Horizontally the word spans its box; vertically its line, which holds the box.
			ok := math.Abs(b.xMin-x0) < 0.5 && math.Abs(b.xMax-x1) < 0.5 &&
				math.Abs(b.yMin-y0) < 0.5 && math.Abs(b.yMax-y1) < 0.5
			if !ok {
				misplaced = append(misplaced, w.Text+" at "+boxString(b)+", OCR "+boxString(bboxWord{"", x0, y0, x1, y1}))
				continue
			}
			matched++
			if strings.EqualFold(strings.Trim(w.Text, ",.:;"), cp.family) {
				nameAt = matched
			}
		}
		if share := float64(matched) / float64(len(cp.Words)); share < 0.98 {
			t.Errorf("page %d: %d of %d OCR words found in place by pdftotext -bbox (%.0f%%); misplaced: %v",
				i+1, matched, len(cp.Words), 100*share, misplaced)
		}
		if i == 0 && nameAt < 0 {
			t.Errorf("page 1: the patient's name %q is not where OCR found it", cp.family)
		}
		t.Logf("page %d: %d of %d words in place", i+1, matched, len(cp.Words))
	}
}

func boxString(b bboxWord) string {
	return "[" + strconv.FormatFloat(b.xMin, 'f', 1, 64) + " " + strconv.FormatFloat(b.yMin, 'f', 1, 64) + " " +
		strconv.FormatFloat(b.xMax, 'f', 1, 64) + " " + strconv.FormatFloat(b.yMax, 'f', 1, 64) + "]"
}

// pdfinfo sees every page at the size its pixels and DPI make, and the PDF/A-2b claim,
// document type and date of service in the metadata.
func TestPdfinfoReportsPagesSizeAndPDFAMetadata(t *testing.T) {
	cps := chartPages(t)
	meta := chartMeta(cps)
	path := writePDF(t, meta, pagesOf(cps))

	info := tool(t, "poppler-utils", "pdfinfo", "-f", "1", "-l", strconv.Itoa(len(cps)), path)
	if m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindStringSubmatch(info); m == nil || m[1] != strconv.Itoa(len(cps)) {
		t.Errorf("pdfinfo pages %v, want %d:\n%s", m, len(cps), info)
	}
	sizes := regexp.MustCompile(`(?m)^Page\s+(\d+) size:\s+([0-9.]+) x ([0-9.]+) pts`).FindAllStringSubmatch(info, -1)
	if len(sizes) != len(cps) {
		t.Fatalf("pdfinfo reports %d page sizes, want %d:\n%s", len(sizes), len(cps), info)
	}
	for i, m := range sizes {
		w, _ := strconv.ParseFloat(m[2], 64)
		h, _ := strconv.ParseFloat(m[3], 64)
		cp := cps[i]
		ww, wh := float64(cp.Width)*72/float64(cp.DPI), float64(cp.Height)*72/float64(cp.DPI)
		if math.Abs(w-ww) > 0.01 || math.Abs(h-wh) > 0.01 {
			t.Errorf("page %d is %gx%g pt, want %gx%g (%dx%d px at %d dpi)", i+1, w, h, ww, wh, cp.Width, cp.Height, cp.DPI)
		}
	}
	for _, want := range []string{"Title:           Radiology report", "Subject:         " + meta.DocumentType + ", date of service " + meta.DateOfService,
		"Producer:        chartscan", "Encrypted:       no", "Metadata Stream: yes"} {
		if !strings.Contains(info, want) {
			t.Errorf("pdfinfo lacks %q:\n%s", want, info)
		}
	}
	xmp := tool(t, "poppler-utils", "pdfinfo", "-meta", path)
	for _, want := range []string{"<pdfaid:part>2</pdfaid:part>", "<pdfaid:conformance>B</pdfaid:conformance>",
		"<chartscan:DocumentType>" + meta.DocumentType + "</chartscan:DocumentType>",
		"<chartscan:DateOfService>" + meta.DateOfService + "</chartscan:DateOfService>",
		"<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">Radiology report</rdf:li></rdf:Alt></dc:title>",
		"<xmp:CreateDate>2024-05-01T10:30:00Z</xmp:CreateDate>"} {
		if !strings.Contains(xmp, want) {
			t.Errorf("pdfinfo -meta lacks %s:\n%s", want, xmp)
		}
	}
}

// The structure checks of OCRmyPDF's test suite, made in Go (checkPDFA), and by
// OCRmyPDF's own code through pikepdf.
func TestChartPDFPassesPDFAChecks(t *testing.T) {
	cps := chartPages(t)
	meta := chartMeta(cps)
	path := writePDF(t, meta, pagesOf(cps))
	rep := checkPDFA(t, path)
	for k, want := range map[string]string{"DocumentType": meta.DocumentType, "DateOfService": meta.DateOfService,
		"DocumentID": meta.ID, "Keywords": meta.DocumentType + "; " + meta.DateOfService} {
		if rep.info[k] != want {
			t.Errorf("Info /%s %q, want %q", k, rep.info[k], want)
		}
	}
	problems, status, conformance := pikepdfCheck(t, path)
	if len(problems) > 0 {
		t.Errorf("qpdf (pikepdf) finds problems: %v", problems)
	}
	if status != "2B" {
		t.Errorf("pikepdf pdfa_status %q, want 2B", status)
	}
	if conformance != "PDF/A-2B" {
		t.Errorf("ocrmypdf file_claims_pdfa says %q, want PDF/A-2B", conformance)
	}
}

// The page shows the scan as stored: the image in the PDF is the stored image pixel for
// pixel, and the page rendered at the scan's resolution looks like it (the text layer
// draws nothing).
func TestChartPDFShowsTheStoredImage(t *testing.T) {
	cps := chartPages(t)
	path := writePDF(t, chartMeta(cps), pagesOf(cps))
	for i, cp := range cps[:2] {
		img, _, err := image.Decode(bytes.NewReader(cp.Image)) // the split's PNG or Deflate TIFF
		if err != nil {
			t.Fatal(err)
		}
		want := toGrey(img)
		if mean, _, err := greyDiff(toGrey(extractImage(t, path, i+1)), want); err != nil || mean != 0 {
			t.Errorf("page %d: the image in the PDF is not the stored image (%v, mean difference %.2f)", i+1, err, mean)
		}
		// Renderers resample even at the image's own resolution: poppler moves some edges
		// by a row, which costs a fraction of a percent of a text page's pixels.
		mean, far, err := greyDiff(renderGrey(t, path, i+1, cp.DPI), want)
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		if far > 0.02 {
			t.Errorf("page %d: rendered, %.2f%% of pixels differ from the stored image (mean difference %.2f)", i+1, 100*far, mean)
		}
	}
}

// Metadata carries only what the caller put in Meta: without a title naming the
// patient, neither the name nor the MRN read on the pages is in the Info dictionary or
// the XMP packet.
func TestMetadataCarriesNoPatientData(t *testing.T) {
	cps := chartPages(t)
	meta := chartMeta(cps)
	meta.Title = ""
	path := writePDF(t, meta, pagesOf(cps))
	out := tool(t, "poppler-utils", "pdfinfo", path) + tool(t, "poppler-utils", "pdfinfo", "-meta", path)
	for _, phi := range []string{cps[0].family, cps[0].mrn} {
		if strings.Contains(strings.ToUpper(out), strings.ToUpper(phi)) {
			t.Errorf("the metadata holds %q, read from the page:\n%s", phi, out)
		}
	}
	if strings.Contains(out, "Title:") || strings.Contains(out, "dc:title") {
		t.Errorf("an empty title was written:\n%s", out)
	}
}

// The same document written twice is the same file, so a redelivery carries the same
// hash; another creation time is another file with another ID.
func TestWriteIsDeterministic(t *testing.T) {
	cps := chartPages(t)
	meta := chartMeta(cps)
	var a, b, c bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		if err := Write(buf, meta, pagesOf(cps)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same document differ")
	}
	meta.Created = meta.Created.Add(time.Hour)
	if err := Write(&c, meta, pagesOf(cps)); err != nil {
		t.Fatal(err)
	}
	id := regexp.MustCompile(`/ID \[<[0-9A-F]+>`)
	if bytes.Equal(id.Find(a.Bytes()), id.Find(c.Bytes())) {
		t.Error("documents created at different times share a file ID")
	}
}

// Building the PDF costs at most 5% of reading its pages (the budget); on this
// machine it is far under, so the margin absorbs a busy machine.
func TestBuildCostsUnderFivePercentOfOCR(t *testing.T) {
	cps := chartPages(t)
	pages := pagesOf(cps)
	best := time.Duration(math.MaxInt64)
	for range 5 {
		start := time.Now()
		if err := Write(io.Discard, chartMeta(cps), pages); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	perPage := best / time.Duration(len(pages))
	ocrPerPage := fixtureOCR / time.Duration(len(pages))
	share := float64(perPage) / float64(ocrPerPage)
	t.Logf("PDF %.2f ms/page, OCR %.0f ms/page: %.3f%% of OCR", ms(perPage), ms(ocrPerPage), 100*share)
	if share > 0.05 {
		t.Errorf("building the PDF takes %.2f ms a page, %.1f%% of OCR's %.0f ms; the budget is 5%%",
			ms(perPage), 100*share, ms(ocrPerPage))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Words stored without line numbers still make lines, split where the words stop
// overlapping vertically, and characters a PDF cannot carry as one 16-bit code become
// U+FFFD rather than breaking the text.
func TestWordsWithoutLineNumbers(t *testing.T) {
	img := synthImage(600, 300, false)
	words := []chartscan.Word{
		{Text: "first", Box: chartscan.Box{X0: 20, Y0: 20, X1: 120, Y1: 50}},
		{Text: "line", Box: chartscan.Box{X0: 140, Y0: 22, X1: 220, Y1: 50}},
		{Text: "second", Box: chartscan.Box{X0: 20, Y0: 120, X1: 150, Y1: 150}},
		{Text: "naïve", Box: chartscan.Box{X0: 170, Y0: 120, X1: 260, Y1: 150}},
		{Text: "𝄞x", Box: chartscan.Box{X0: 280, Y0: 120, X1: 330, Y1: 150}},
		{Text: "", Box: chartscan.Box{X0: 350, Y0: 120, X1: 400, Y1: 150}},
		{Text: "nobox", Box: chartscan.Box{}},
	}
	path := writePDF(t, Meta{Created: time.Unix(0, 0)}, []Page{{Image: encodePNG(t, img), DPI: 150, Words: words}})
	text := tool(t, "poppler-utils", "pdftotext", "-enc", "UTF-8", path, "-")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(strings.Trim(l, "\f")); l != "" {
			lines = append(lines, l)
		}
	}
	got := strings.Join(lines, " | ")
	if want := "first line | second naïve \uFFFDx"; got != want {
		t.Errorf("pdftotext: %q, want %q", got, want)
	}
	if strings.Contains(got, "nobox") {
		t.Error("a word without a box was written")
	}
}

// Metadata in any script stays equal in the Info dictionary (UTF-16) and XMP (UTF-8);
// control characters, which XML cannot carry, are dropped from both, and markup is
// escaped, not interpreted.
func TestMetadataInAnyScript(t *testing.T) {
	meta := Meta{
		Title:         "Befund Müller — 診療録 <b>&\x00\x07",
		DocumentType:  "discharge_summary",
		DateOfService: "2023-11-05",
		ID:            "pdoc-ü-42",
		Producer:      "chartscan test",
		Created:       time.Date(2023, 11, 6, 8, 0, 0, 0, time.FixedZone("CET", 3600)),
	}
	page := Page{Image: encodePNG(t, synthImage(300, 200, false)), DPI: 100}
	path := writePDF(t, meta, []Page{page})
	rep := checkPDFA(t, path)
	want := "Befund Müller — 診療録 <b>&"
	if rep.info["Title"] != want || rep.xmp[xmpTitle][0] != want {
		t.Errorf("title: Info %q, XMP %q; want %q", rep.info["Title"], rep.xmp[xmpTitle], want)
	}
	if s := "discharge summary, date of service 2023-11-05"; rep.info["Subject"] != s || rep.info["Keywords"] != "discharge_summary; 2023-11-05" {
		t.Errorf("Subject %q, Keywords %q; want %q and the code", rep.info["Subject"], rep.info["Keywords"], s)
	}
	if got := tool(t, "poppler-utils", "pdfinfo", "-enc", "UTF-8", "-isodates", path); !strings.Contains(got, "Title:           "+want) ||
		!strings.Contains(got, "CreationDate:    2023-11-06T07:00:00Z") {
		t.Errorf("pdfinfo:\n%s", got)
	}
	if problems, status, _ := pikepdfCheck(t, path); len(problems) > 0 || status != "2B" {
		t.Errorf("pikepdf: problems %v, pdfa_status %q", problems, status)
	}
}

// The PDF/A checks catch what they look for: each file here is a good one with one
// violation patched in (an edit inside a stream keeps its length; the cross-reference
// table is rebuilt).
func TestPDFAChecksCatchViolations(t *testing.T) {
	page := Page{Image: encodePNG(t, synthImage(300, 200, false)), DPI: 100, Words: []chartscan.Word{
		{Text: "word", Box: chartscan.Box{X0: 10, Y0: 10, X1: 60, Y1: 30}}}}
	meta := Meta{Title: "Radiology report", DocumentType: "radiology", Created: time.Unix(1e9, 0)}
	good, err := os.ReadFile(writePDF(t, meta, []Page{page}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goodPath := filepath.Join(dir, "good.pdf")
	if err := os.WriteFile(goodPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if f := runCheckPDFA(goodPath); len(f) > 0 {
		t.Fatalf("the good file fails: %v", f)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"claims PDF/A-1", "<pdfaid:part>2</", "<pdfaid:part>1</", "pdfaid:part [1], want 2"},
		{"claims level A", "<pdfaid:conformance>B</", "<pdfaid:conformance>A</", "pdfaid:conformance [A], want B"},
		{"no PDF/A output intent", "/S /GTS_PDFA1", "/S /GTS_PDFX1", "want /GTS_PDFA1"},
		{"font not embedded", "/FontFile2 ", "/FontFileX ", "is not embedded"},
		{"title differs from XMP", "/Title (Radiology report)", "/Title (Radiology rep0rt)", "PDF/A wants them equal"},
		{"undescribed XMP property", "xmlns:chartscan=\"https://github.com/chartscan/", "xmlns:chartscan=\"https://gitlab.com/chartscan/", "no extension schema describes it"},
		{"encrypted", "/Info 3 0 R /ID", "/Encrypt 3 0 R /ID", "pdfcpu"},
		{"interpolated image", "/Subtype /Image /Width", "/Subtype /Image /Interpolate true /Width", "Interpolate true"},
		{"LZW", "/Filter /FlateDecode /DecodeParms << /Predictor 15", "/Filter /LZWDecode /DecodeParms << /Predictor 15", "LZW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from := []byte(tc.from)
			if bytes.Count(good, from) != 1 {
				t.Fatalf("%q occurs %d times in the good file", tc.from, bytes.Count(good, from))
			}
			bad := fixXref(t, bytes.Replace(good, from, []byte(tc.to), 1))
			path := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(tc.name)+".pdf")
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			failures := runCheckPDFA(path)
			if !strings.Contains(strings.Join(failures, "\n"), tc.want) {
				t.Errorf("checkPDFA: %q, want a failure with %q", failures, tc.want)
			}
		})
	}
}

// fixXref rebuilds the cross-reference table of a PDF written by Write after its objects
// were edited in place, so that a checker reads the edit rather than a broken file.
func fixXref(t *testing.T, pdf []byte) []byte {
	t.Helper()
	at := bytes.LastIndex(pdf, []byte("\nxref\n")) + 1
	trailer := bytes.Index(pdf[at:], []byte("trailer\n"))
	if at == 0 || trailer < 0 {
		t.Fatal("no xref table")
	}
	offsets := map[int]int{}
	for _, m := range regexp.MustCompile(`(?m)^(\d+) 0 obj\n`).FindAllSubmatchIndex(pdf[:at], -1) {
		n, _ := strconv.Atoi(string(pdf[m[2]:m[3]]))
		offsets[n] = m[0]
	}
	var b bytes.Buffer
	b.Write(pdf[:at])
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for n := 1; n <= len(offsets); n++ {
		fmt.Fprintf(&b, "%010d 00000 n \n", offsets[n])
	}
	tr := pdf[at+trailer:]
	tr = tr[:bytes.Index(tr, []byte("startxref"))]
	b.Write(tr)
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", at)
	return b.Bytes()
}
