package synth

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/charts and testdata/empi/sample.csv")

// sampleOptions make the committed sample: three clean multi-patient PDFs at 300 dpi,
// about ten pages, with one patient left out of the EMPI.
var sampleOptions = Options{
	Seed:                2028,
	Documents:           3,
	PatientsPerDocument: [2]int{2, 2},
	PagesPerPatient:     [2]int{1, 2},
	ContinuationShare:   0.5,
	MaxSkew:             0.8,
	Noise:               0.0003,
	DPI:                 300,
	NotInEMPIShare:      0.17, // one of the six patients
}

// samplePeople is the EMPI of the sample: the first 60 people of fake_1000, so the
// sample's six patients sit among about fifty others.
const samplePeople = 60

func TestSample(t *testing.T) {
	people := loadSplink(t, 1)[:samplePeople]
	dir := t.TempDir()
	truth, err := Generate(people, sampleOptions, dir)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	checkTruth(t, dir, truth, people)

	pages, outOfEMPI := 0, map[string]bool{}
	for _, doc := range truth.Documents {
		mrns := map[string]bool{}
		for _, p := range doc.Pages {
			mrns[p.MRN] = true
			if p.Kind != KindFull && p.Kind != KindContinuation {
				t.Errorf("%s page %d: kind %q", doc.File, p.Page, p.Kind)
			}
			if p.Rotation != 0 {
				t.Errorf("%s page %d: rotated %d", doc.File, p.Page, p.Rotation)
			}
			if !p.InEMPI {
				outOfEMPI[p.MRN] = true
			}
		}
		if n := len(doc.Pages); n < 2 || n > 4 {
			t.Errorf("%s: %d pages, want 2 to 4", doc.File, n)
		}
		if len(mrns) < 2 {
			t.Errorf("%s: %d patients, want a multi-patient batch", doc.File, len(mrns))
		}
		pages += len(doc.Pages)
	}
	if pages < 8 || pages > 12 {
		t.Errorf("sample has %d pages, want about 10", pages)
	}
	if len(outOfEMPI) != 1 {
		t.Errorf("%d patients not in the EMPI, want 1", len(outOfEMPI))
	}

	// Generated name -> committed path.
	files := map[string]string{
		"truth.json": filepath.Join("..", "testdata", "charts", "truth.json"),
		"empi.csv":   filepath.Join("..", "testdata", "empi", "sample.csv"),
	}
	for _, doc := range truth.Documents {
		files[doc.File] = filepath.Join("..", "testdata", "charts", doc.File)
	}
	total := 0
	for gen, committed := range files {
		got, err := os.ReadFile(filepath.Join(dir, gen))
		if err != nil {
			t.Fatal(err)
		}
		total += len(got)
		if *update {
			if err := os.WriteFile(committed, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(committed)
		if err != nil {
			t.Fatalf("%v (run go test ./synth/ -run TestSample -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the generator makes now; run go test ./synth/ -run TestSample -update and review", committed)
		}
	}
	if total > 2<<20 {
		t.Errorf("sample is %d bytes, want under 2 MB", total)
	}
}
