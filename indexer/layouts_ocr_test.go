package indexer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/synth"
)

// TestRenderedLayouts renders one page of every layout family synth draws — table
// forms, addressograph imprints, stickers, footers, two-column headers, lab-system
// headers, handwritten values and the classic labelled ones — scans it with skew and
// noise, reads it with Tesseract and checks that Extract finds the right MRN, name and
// birth date, each with a box on the page.
func TestRenderedLayouts(t *testing.T) {
	if testing.Short() {
		t.Skip("OCR: not in -short")
	}
	eng := ocr.NewEngine(1, "eng")
	defer eng.Close()
	people := []chartscan.Patient{
		{MRN: "40012345", Family: "Okafor", Given: "Adaeze", BirthDate: "1962-03-14", Sex: "female"},
		{MRN: "57730218", Family: "Lindqvist", Given: "Henrik", BirthDate: "1988-11-02", Sex: "male"},
	}
	for _, name := range synth.LayoutNames() {
		label, err := synth.ParseLayout(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range people {
			person := &synth.Person{EMPI: p, Printed: p}
			spec := synth.PageSpec{Person: person, DocType: chartscan.DocTypeProgressNote, DateOfService: "2024-05-06",
				Label: label, DateFormat: synth.DateFormat(i % 4), PageNumber: 1, Skew: 0.4, Noise: 0.001, Seed: int64(7 + i)}
			img := synth.RenderPage(spec, 300)
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			res, err := eng.Read(context.Background(), buf.Bytes(), 300)
			if err != nil {
				t.Fatalf("%s: read: %v", name, err)
			}
			if dir := os.Getenv("CHARTSCAN_DUMP_WORDS"); dir != "" {
				// For working on the extractor: the words of each rendered page.
				b, _ := json.Marshal(res.Words)
				os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.json", name, i)), b, 0o644)
			}
			got := map[chartscan.IdentifierKind]chartscan.Identifier{}
			for _, id := range indexer.Extract(res.Words) {
				got[id.Kind] = id
			}
			e := indexer.EvidenceFrom(indexer.Extract(res.Words))
			if e.MRN.Value != p.MRN {
				t.Errorf("%s, %s: MRN %q, want %q", name, p.Family, e.MRN.Value, p.MRN)
			}
			if !oneSlip(e.Family.Value, indexer.NormalizeName(p.Family)) || !oneSlip(e.Given.Value, indexer.NormalizeName(p.Given)) {
				t.Errorf("%s, %s: name %q %q, want %s, %s", name, p.Family, e.Family.Value, e.Given.Value, p.Family, p.Given)
			}
			if e.DOB.Value != p.BirthDate {
				t.Errorf("%s, %s: birth date %q, want %s", name, p.Family, e.DOB.Value, p.BirthDate)
			}
			w, h := img.Bounds().Dx(), img.Bounds().Dy()
			for _, k := range []chartscan.IdentifierKind{chartscan.KindMRN, chartscan.KindName, chartscan.KindDOB} {
				b := got[k].Box
				if b.X1 <= b.X0 || b.Y1 <= b.Y0 || b.X0 < 0 || b.Y0 < 0 || b.X1 > w || b.Y1 > h {
					t.Errorf("%s, %s: %s box %+v not on the %dx%d page", name, p.Family, k, b, w, h)
				}
			}
		}
	}
}

// oneSlip reports whether a name was read right, or with one letter misread (OCR reads
// "LINDQVIST" as "LINDOVIST" now and then; matching scores that as a close name).
func oneSlip(got, want string) bool {
	if len(got) != len(want) {
		return false
	}
	diff := 0
	for i := range got {
		if got[i] != want[i] {
			diff++
		}
	}
	return diff <= 1
}
