package synth

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// ErrOptions is returned by Generate for options it cannot honour.
var ErrOptions = errors.New("bad options")

// Options says what Generate makes. Zero values take defaults: one document, one patient
// per document, one page per patient, 300 dpi, no effects, Bilevel pages.
type Options struct {
	Seed                int64
	Documents           int     // number of PDFs
	PatientsPerDocument [2]int  // inclusive range of patients, in sequence, per PDF
	PagesPerPatient     [2]int  // inclusive range of pages per patient run
	ContinuationShare   float64 // chance a page after a run's first is a continuation
	MaxSkew             float64 // degrees; each page is skewed uniformly in ±MaxSkew
	Noise               float64 // salt-and-pepper share on every page, 0..1
	RotateShare         float64 // chance a page is scanned turned by 90, 180 or 270
	DPI                 int
	NotInEMPIShare      float64 // share of the patients placed in charts left out of empi.csv
	Encoding            Encoding
}

// Truth is the ground truth of a Generate run, written as truth.json.
type Truth struct {
	Documents []TruthDocument `json:"documents"`
}

// TruthDocument is one generated PDF and its pages in order.
type TruthDocument struct {
	File  string      `json:"file"`
	Pages []TruthPage `json:"pages"`
}

// TruthPage is the truth of one page: whose it is, whether that patient is in the EMPI,
// its kind (KindFull or KindContinuation), document type, date of service (YYYY-MM-DD)
// and the clockwise rotation applied to the scan (0, 90, 180 or 270).
type TruthPage struct {
	Page          int    `json:"page"`
	MRN           string `json:"mrn"`
	InEMPI        bool   `json:"in_empi"`
	Kind          string `json:"kind"`
	DocType       string `json:"doc_type"`
	DateOfService string `json:"date_of_service"`
	Rotation      int    `json:"rotation"`
}

// EMPIHeader is the header of empi.csv.
var EMPIHeader = []string{"mrn", "family", "given", "birth_date", "sex", "street", "city", "postcode", "state", "phone"}

func (o *Options) normalize() error {
	if o.Documents == 0 {
		o.Documents = 1
	}
	if o.DPI == 0 {
		o.DPI = 300
	}
	for _, r := range []*[2]int{&o.PatientsPerDocument, &o.PagesPerPatient} {
		if *r == [2]int{} {
			*r = [2]int{1, 1}
		}
	}
	switch {
	case o.Documents < 0:
		return fmt.Errorf("%w: documents %d", ErrOptions, o.Documents)
	case o.DPI < 50 || o.DPI > 1200:
		return fmt.Errorf("%w: dpi %d", ErrOptions, o.DPI)
	case o.PatientsPerDocument[0] < 1 || o.PatientsPerDocument[0] > o.PatientsPerDocument[1]:
		return fmt.Errorf("%w: patients per document %v", ErrOptions, o.PatientsPerDocument)
	case o.PagesPerPatient[0] < 1 || o.PagesPerPatient[0] > o.PagesPerPatient[1]:
		return fmt.Errorf("%w: pages per patient %v", ErrOptions, o.PagesPerPatient)
	case o.MaxSkew < 0 || o.MaxSkew > 45:
		return fmt.Errorf("%w: max skew %g", ErrOptions, o.MaxSkew)
	}
	for _, s := range []float64{o.ContinuationShare, o.Noise, o.RotateShare, o.NotInEMPIShare} {
		if s < 0 || s > 1 || math.IsNaN(s) {
			return fmt.Errorf("%w: share %g not in [0,1]", ErrOptions, s)
		}
	}
	return nil
}

// Generate renders opt.Documents chart PDFs for patients drawn from people and writes
// chart-NNN.pdf, truth.json and empi.csv to outDir, which must exist. Patients are drawn
// without repeats until people run out. empi.csv holds every person in people except
// those chosen as not in the EMPI. The same people and opt give the same bytes.
func Generate(people []Person, opt Options, outDir string) (*Truth, error) {
	if len(people) == 0 {
		return nil, ErrNoPeople
	}
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x67656e)) // "gen"
	between := func(r [2]int) int { return r[0] + rng.IntN(r[1]-r[0]+1) }

	// Plan who goes in which document first, so the not-in-EMPI share is of the
	// patients actually placed.
	order := rng.Perm(len(people))
	next := 0
	plan := make([][]int, opt.Documents)
	var placed []int
	seen := map[int]bool{}
	for d := range plan {
		for range between(opt.PatientsPerDocument) {
			i := order[next%len(order)]
			next++
			plan[d] = append(plan[d], i)
			if !seen[i] {
				seen[i] = true
				placed = append(placed, i)
			}
		}
	}
	out := map[int]bool{}
	k := int(math.Round(opt.NotInEMPIShare * float64(len(placed))))
	for _, j := range rng.Perm(len(placed))[:k] {
		out[placed[j]] = true
	}

	truth := &Truth{}
	for d, patients := range plan {
		doc := TruthDocument{File: fmt.Sprintf("chart-%03d.pdf", d+1)}
		var imgs []*image.Gray
		for _, pi := range patients {
			p := &people[pi]
			var spec PageSpec
			for j := range between(opt.PagesPerPatient) {
				if j > 0 && rng.Float64() < opt.ContinuationShare {
					spec.Continuation = true
					spec.PageNumber++
				} else {
					spec = PageSpec{
						Person:        p,
						DocType:       DocTypes[rng.IntN(len(DocTypes))],
						DateOfService: serviceDate(rng),
						Label:         LabelStyle(rng.IntN(int(labelStyles))),
						DateFormat:    DateFormat(rng.IntN(int(dateFormats))),
						PageNumber:    1,
					}
				}
				spec.Skew = math.Round((rng.Float64()*2-1)*opt.MaxSkew*100) / 100
				spec.Noise = opt.Noise
				spec.Rotate = 0
				if rng.Float64() < opt.RotateShare {
					spec.Rotate = 90 * (1 + rng.IntN(3))
				}
				spec.Seed = rng.Int64()
				imgs = append(imgs, RenderPage(spec, opt.DPI))
				kind := KindFull
				if spec.Continuation {
					kind = KindContinuation
				}
				doc.Pages = append(doc.Pages, TruthPage{
					Page: len(imgs), MRN: p.EMPI.MRN, InEMPI: !out[pi], Kind: kind,
					DocType: spec.DocType, DateOfService: spec.DateOfService, Rotation: spec.Rotate,
				})
			}
		}
		var buf bytes.Buffer
		if err := WritePDF(&buf, imgs, opt.DPI, opt.Encoding); err != nil {
			return nil, fmt.Errorf("generate %s: %w", doc.File, err)
		}
		if err := os.WriteFile(filepath.Join(outDir, doc.File), buf.Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		truth.Documents = append(truth.Documents, doc)
	}

	js, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("generate truth: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "truth.json"), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	var csvBuf bytes.Buffer
	if err := WriteEMPI(&csvBuf, people, func(i int) bool { return !out[i] }); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(outDir, "empi.csv"), csvBuf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	return truth, nil
}

// WriteEMPI writes the EMPI records of the people for which keep(index) is true as CSV
// with EMPIHeader; a nil keep keeps everyone.
func WriteEMPI(w io.Writer, people []Person, keep func(int) bool) error {
	cw := csv.NewWriter(w)
	cw.Write(EMPIHeader)
	for i, p := range people {
		if keep != nil && !keep(i) {
			continue
		}
		e := p.EMPI
		cw.Write([]string{e.MRN, e.Family, e.Given, e.BirthDate, e.Sex, e.Street, e.City, e.Postcode, e.State, e.Phone})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write empi: %w", err)
	}
	return nil
}

// serviceDate returns a date of service between 2019-01-01 and 2025-12-31.
func serviceDate(rng *rand.Rand) string {
	start := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.AddDate(0, 0, rng.IntN(7*365)).Format(time.DateOnly)
}
