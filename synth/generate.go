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

	"github.com/chartscan/chartscan"
)

// ErrOptions is returned by Generate for options it cannot honour.
var ErrOptions = errors.New("bad options")

// Options says what Generate makes. Zero values take defaults: one document, one patient
// per document, one page per patient, 300 dpi, no effects, Bilevel pages, every label
// style and date format, only full and continuation pages.
//
// The benchmark fields (NameDOBShare to DateFormats) draw from a random stream of their
// own, so leaving them zero gives exactly the output of earlier versions.
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

	// MarkNotInEMPI gives the identifying pages of patients left out of the EMPI kind
	// KindNotInEMPI instead of KindFull (which the committed sample keeps).
	MarkNotInEMPI bool
	// NearTwinShare is the share of the placed patients in the EMPI who get a near twin
	// there (same surname, birth date and address, another first name, their own MRN);
	// each of their runs prints one of the two twins, as KindNearTwin.
	NearTwinShare float64
	// NameDOBShare and WrongMRNShare are the chances that an identifying page of any
	// other patient in the EMPI is KindNameDOB (no MRN printed) or KindWrongMRN (the
	// MRN printed with one digit slip that is no EMPI MRN); their sum is at most 1.
	NameDOBShare  float64
	WrongMRNShare float64
	// VariantShare is the chance that an identifying page prints one of the person's
	// Variants (another row of the Splink cluster: typos, swapped dates, missing
	// fields) instead of Printed, while empi.csv keeps the EMPI record. A variant with
	// no name or no DOB prints what it has. Near twins have no variants.
	VariantShare float64
	// Labels and DateFormats, when not empty, are the label styles (layout families) and
	// date formats identifying pages draw from, evenly. Empty DateFormats means all of
	// them; empty Labels means the four classic styles (inline, addressograph, nameblock,
	// unitno). When Labels is set, identifying pages also print the distractors real
	// forms carry (attending, account and visit numbers, ward, phone, dates: Extras).
	Labels      []LabelStyle
	DateFormats []DateFormat
	// PageNumbers numbers the pages of each printed document (an identifying page and
	// its continuations) in a style drawn per document: "Page k of N", "Pg k/N",
	// "k of N", "Page k" or none, at the footer's or the header's right. Without it
	// every page prints "Page k" in the footer.
	PageNumbers bool
	// Distractors is the number of other patients empi.csv holds besides the charts'
	// people: a Population drawn from the same names as the Splink people, with birth
	// dates over 80 years, so that a page's name and birth date meet the namesakes a
	// real EMPI of that size holds. None takes an MRN a generated page could print.
	Distractors int
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
// its kind (a Kind* constant), document type, date of service (YYYY-MM-DD) and the
// clockwise rotation applied to the scan (0, 90, 180 or 270). For KindWrongMRN,
// PrintedMRN is the MRN printed instead of MRN; for KindNearTwin, TwinMRN is the other
// twin's. Variant says the page prints one of the person's Variants. Continuation pages
// carry the MRN of the run they continue and leave the other fields empty. Layout is the
// name of the page's layout family (see LayoutNames), on a continuation page that of the
// document it continues; Numbering is the page number as printed, "" for none.
type TruthPage struct {
	Page          int    `json:"page"`
	MRN           string `json:"mrn"`
	InEMPI        bool   `json:"in_empi"`
	Kind          string `json:"kind"`
	DocType       string `json:"doc_type"`
	DateOfService string `json:"date_of_service"`
	Rotation      int    `json:"rotation"`
	PrintedMRN    string `json:"printed_mrn,omitempty"`
	TwinMRN       string `json:"twin_mrn,omitempty"`
	Variant       bool   `json:"variant,omitempty"`
	Layout        string `json:"layout"`
	Numbering     string `json:"numbering,omitempty"`
	// Printed is what the identifying page prints of its patient (a Variant's fields,
	// no MRN on a name-and-DOB page), nil on continuation pages: what a clerk reading
	// the paper has to go on, against the EMPI record empi.csv holds.
	Printed *PrintedIdentity `json:"printed,omitempty"`
}

// PrintedIdentity is the patient identity an identifying page prints.
type PrintedIdentity struct {
	MRN       string `json:"mrn,omitempty"`
	Family    string `json:"family"`
	Given     string `json:"given"`
	BirthDate string `json:"birth_date"`
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
	case o.Distractors < 0:
		return fmt.Errorf("%w: distractors %d", ErrOptions, o.Distractors)
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
	for _, s := range []float64{o.ContinuationShare, o.Noise, o.RotateShare, o.NotInEMPIShare,
		o.NearTwinShare, o.NameDOBShare, o.WrongMRNShare, o.NameDOBShare + o.WrongMRNShare, o.VariantShare} {
		if s < 0 || s > 1 || math.IsNaN(s) {
			return fmt.Errorf("%w: share %g not in [0,1]", ErrOptions, s)
		}
	}
	for _, l := range o.Labels {
		if l < 0 || l >= labelStyles {
			return fmt.Errorf("%w: label style %d", ErrOptions, l)
		}
	}
	for _, f := range o.DateFormats {
		if f < 0 || f >= dateFormats {
			return fmt.Errorf("%w: date format %d", ErrOptions, f)
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

	// The benchmark options draw from krng only, so rng's draws and with them the
	// default output stay what they always were.
	krng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x6b696e64)) // "kind"
	used := map[string]bool{}
	for _, p := range people {
		used[p.EMPI.MRN] = true
	}
	// The layout options draw from lrng only, for the same reason.
	lrng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x6c61796f7574)) // "layout"
	twins := map[int]chartscan.Patient{}
	if opt.NearTwinShare > 0 {
		var in []int
		for _, i := range placed {
			if !out[i] {
				in = append(in, i)
			}
		}
		k := int(math.Round(opt.NearTwinShare * float64(len(in))))
		for _, j := range krng.Perm(len(in))[:k] {
			twins[in[j]] = nearTwin(people[in[j]].EMPI, krng, used)
		}
	}

	truth := &Truth{}
	for d, patients := range plan {
		doc := TruthDocument{File: fmt.Sprintf("chart-%03d.pdf", d+1)}
		var imgs []*image.Gray
		// A printed document's pages are rendered once it is complete, as numbering
		// them "Page k of N" takes N.
		var specs []PageSpec
		var pages []TruthPage
		flush := func() {
			for i := range specs {
				specs[i].PageCount = len(specs)
				imgs = append(imgs, RenderPage(specs[i], opt.DPI))
				pages[i].Page, pages[i].Numbering = len(imgs), specs[i].numberText()
			}
			doc.Pages = append(doc.Pages, pages...)
			specs, pages = specs[:0], pages[:0]
		}
		for _, pi := range patients {
			p := &people[pi]
			// who is the person whose run this is: p, or for a near twin either twin.
			who, twinMRN := p, ""
			if t, ok := twins[pi]; ok {
				twinMRN = t.MRN
				if krng.IntN(2) == 0 {
					who = &Person{EMPI: t, Printed: t, Cluster: p.Cluster}
					twinMRN = p.EMPI.MRN
				}
			}
			var spec PageSpec
			var page TruthPage
			for j := range between(opt.PagesPerPatient) {
				if j > 0 && rng.Float64() < opt.ContinuationShare {
					spec.Continuation = true
					spec.PageNumber++
					page = TruthPage{MRN: page.MRN, InEMPI: page.InEMPI, Kind: KindContinuation}
				} else {
					flush()
					spec = PageSpec{
						Person:        who,
						DocType:       DocTypes[rng.IntN(len(DocTypes))],
						DateOfService: serviceDate(rng),
						Label:         LabelStyle(rng.IntN(int(classicLabels))),
						DateFormat:    DateFormat(rng.IntN(int(dateFormats))),
						PageNumber:    1,
					}
					if len(opt.Labels) > 0 {
						spec.Label = opt.Labels[krng.IntN(len(opt.Labels))]
					}
					if len(opt.DateFormats) > 0 {
						spec.DateFormat = opt.DateFormats[krng.IntN(len(opt.DateFormats))]
					}
					page = identify(&spec, out[pi], twinMRN, opt, krng, used)
					if len(opt.Labels) > 0 {
						spec.Extras = NewExtras(lrng, used, spec.DateOfService)
					}
					if opt.PageNumbers {
						spec.Numbering, spec.NumberAtTop = drawNumbering(lrng)
					}
				}
				spec.Skew = math.Round((rng.Float64()*2-1)*opt.MaxSkew*100) / 100
				spec.Noise = opt.Noise
				spec.Rotate = 0
				if rng.Float64() < opt.RotateShare {
					spec.Rotate = 90 * (1 + rng.IntN(3))
				}
				spec.Seed = rng.Int64()
				page.DocType, page.DateOfService, page.Rotation = spec.DocType, spec.DateOfService, spec.Rotate
				page.Layout = spec.Label.String()
				specs, pages = append(specs, spec), append(pages, page)
			}
			flush()
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
	var empi []chartscan.Patient
	for i, p := range people {
		if !out[i] {
			empi = append(empi, p.EMPI)
		}
		if t, ok := twins[i]; ok {
			empi = append(empi, t)
		}
	}
	if opt.Distractors > 0 {
		for _, t := range twins {
			used[t.MRN] = true
		}
		for _, d := range truth.Documents {
			for _, p := range d.Pages {
				used[p.MRN], used[p.PrintedMRN], used[p.TwinMRN] = true, true, true
			}
		}
		err := Population(opt.Distractors, opt.Seed^0x64697374, func(p chartscan.Patient) error { // "dist"
			if !used[p.MRN] {
				empi = append(empi, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var csvBuf bytes.Buffer
	if err := writeEMPI(&csvBuf, empi); err != nil {
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
	var empi []chartscan.Patient
	for i, p := range people {
		if keep == nil || keep(i) {
			empi = append(empi, p.EMPI)
		}
	}
	return writeEMPI(w, empi)
}

func writeEMPI(w io.Writer, empi []chartscan.Patient) error {
	cw := csv.NewWriter(w)
	cw.Write(EMPIHeader)
	for _, e := range empi {
		cw.Write([]string{e.MRN, e.Family, e.Given, e.BirthDate, e.Sex, e.Street, e.City, e.Postcode, e.State, e.Phone})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write empi: %w", err)
	}
	return nil
}

// identify decides what the identifying page in spec prints for spec.Person (out: left
// out of the EMPI; twinMRN: the other twin's MRN if the person has a near twin), points
// spec.Person at a copy printing that, and returns the page's truth without its
// position, document type, date of service and rotation. used holds every MRN taken.
func identify(spec *PageSpec, out bool, twinMRN string, opt Options, krng *rand.Rand, used map[string]bool) TruthPage {
	who := spec.Person
	page := TruthPage{MRN: who.EMPI.MRN, InEMPI: !out, Kind: KindFull}
	printed := who.Printed
	if opt.VariantShare > 0 && len(who.Variants) > 0 && krng.Float64() < opt.VariantShare {
		printed, page.Variant = who.Variants[krng.IntN(len(who.Variants))], true
		// A printed label always carries a name and a birth date: a field the variant
		// record lacks (a gap in that registration) prints as the person's own.
		if printed.Family == "" {
			printed.Family = who.Printed.Family
		}
		if printed.Given == "" {
			printed.Given = who.Printed.Given
		}
		if printed.BirthDate == "" {
			printed.BirthDate = who.Printed.BirthDate
		}
	}
	switch {
	case out:
		if opt.MarkNotInEMPI {
			page.Kind = KindNotInEMPI
		}
	case twinMRN != "":
		page.Kind, page.TwinMRN = KindNearTwin, twinMRN
	case opt.NameDOBShare > 0 || opt.WrongMRNShare > 0:
		u := krng.Float64()
		switch {
		case u < opt.NameDOBShare:
			page.Kind, printed.MRN = KindNameDOB, ""
		case u < opt.NameDOBShare+opt.WrongMRNShare:
			if slip, ok := slipMRN(who.EMPI.MRN, krng, func(m string) bool { return used[m] }); ok {
				page.Kind, page.PrintedMRN, printed.MRN = KindWrongMRN, slip, slip
			}
		}
	}
	if printed != who.Printed {
		cp := *who
		cp.Printed = printed
		spec.Person = &cp
	}
	page.Printed = &PrintedIdentity{MRN: printed.MRN, Family: printed.Family, Given: printed.Given, BirthDate: printed.BirthDate}
	return page
}

// serviceDate returns a date of service between 2019-01-01 and 2025-12-31.
func serviceDate(rng *rand.Rand) string {
	start := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.AddDate(0, 0, rng.IntN(7*365)).Format(time.DateOnly)
}
