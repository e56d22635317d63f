package synth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
)

// oneSlip reports whether b is a with exactly one digit replaced or two adjacent
// differing digits swapped.
func oneSlip(a, b string) bool {
	if len(a) != len(b) || a == b {
		return false
	}
	diff := slipDiff(a, b)
	switch len(diff) {
	case 1:
		return true
	case 2:
		i, j := diff[0], diff[1]
		return j == i+1 && a[i] == b[j] && a[j] == b[i]
	}
	return false
}

// slipDiff returns the positions where a and b, of one length, differ.
func slipDiff(a, b string) []int {
	var diff []int
	for i := range a {
		if a[i] != b[i] {
			diff = append(diff, i)
		}
	}
	return diff
}

func TestDigitSlips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		mrn := newMRN(rng, map[string]bool{})
		slips := digitSlips(mrn, true)
		if len(slips) < 9 {
			t.Fatalf("%s: %d slips, want at least one per digit", mrn, len(slips))
		}
		for _, s := range slips {
			if !oneSlip(mrn, s) {
				t.Errorf("%s -> %s is not one slip", mrn, s)
			}
		}
		for _, s := range digitSlips(mrn, false) {
			if !oneSlip(mrn, s) || len(slipDiff(mrn, s)) != 2 {
				t.Errorf("%s -> %s is not one transposition", mrn, s)
			}
		}
		// taken everything but one: slipMRN must find it.
		want := slips[len(slips)-1]
		got, ok := slipMRN(mrn, rng, func(s string) bool { return s != want })
		if !ok || got != want {
			t.Errorf("slipMRN with one free slip = %q, %v; want %q", got, ok, want)
		}
	}
	if _, ok := slipMRN("123456782", rng, func(string) bool { return true }); ok {
		t.Error("slipMRN with every slip taken: got ok")
	}
}

// benchmarkOptions make a small set with every page kind.
var benchmarkOptions = Options{
	Seed: 5, Documents: 8, PatientsPerDocument: [2]int{3, 3}, PagesPerPatient: [2]int{1, 3},
	ContinuationShare: 0.3, DPI: 50, NotInEMPIShare: 0.15, MarkNotInEMPI: true,
	NearTwinShare: 0.2, NameDOBShare: 0.3, WrongMRNShare: 0.3, VariantShare: 0.5,
	Labels: []LabelStyle{LabelInline, LabelUnitNo}, DateFormats: []DateFormat{DateISO},
}

func TestGenerateKinds(t *testing.T) {
	people := loadSplink(t, 4)[:60]
	dirA, dirB := t.TempDir(), t.TempDir()
	truth, err := Generate(people, benchmarkOptions, dirA)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	checkPages(t, dirA, truth)
	if _, err := Generate(people, benchmarkOptions, dirB); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"truth.json", "empi.csv", "chart-001.pdf"} {
		a, _ := os.ReadFile(filepath.Join(dirA, name))
		b, _ := os.ReadFile(filepath.Join(dirB, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with one seed", name)
		}
	}
	var onDisk Truth
	data, _ := os.ReadFile(filepath.Join(dirA, "truth.json"))
	if err := json.Unmarshal(data, &onDisk); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*truth, onDisk); diff != "" {
		t.Errorf("truth.json differs from the returned Truth:\n%s", diff)
	}

	rows := readEMPI(t, filepath.Join(dirA, "empi.csv"))
	empi := map[string][]string{}
	for _, r := range rows[1:] {
		if empi[r[0]] != nil {
			t.Errorf("MRN %s twice in empi.csv", r[0])
		}
		empi[r[0]] = r
	}
	isPerson := map[string]bool{}
	for _, p := range people {
		isPerson[p.EMPI.MRN] = true
	}

	kinds := map[string]int{}
	variants := 0
	out, twins := map[string]bool{}, map[string]bool{}
	for _, doc := range onDisk.Documents {
		for _, p := range doc.Pages {
			where := fmt.Sprintf("%s page %d", doc.File, p.Page)
			kinds[p.Kind]++
			if p.Variant {
				variants++
			}
			if p.InEMPI != (empi[p.MRN] != nil) {
				t.Errorf("%s: in_empi %v, empi.csv disagrees", where, p.InEMPI)
			}
			if p.Kind != KindWrongMRN && p.PrintedMRN != "" || p.Kind != KindNearTwin && p.TwinMRN != "" {
				t.Errorf("%s: kind %s with printed_mrn %q twin_mrn %q", where, p.Kind, p.PrintedMRN, p.TwinMRN)
			}
			switch p.Kind {
			case KindNotInEMPI:
				if p.InEMPI {
					t.Errorf("%s: not_in_empi page of a patient in the EMPI", where)
				}
				out[p.MRN] = true
			case KindFull, KindNameDOB:
				if !p.InEMPI {
					t.Errorf("%s: %s page of a patient not in the EMPI", where, p.Kind)
				}
			case KindWrongMRN:
				if !oneSlip(p.MRN, p.PrintedMRN) {
					t.Errorf("%s: printed MRN %s is not one slip from %s", where, p.PrintedMRN, p.MRN)
				}
				if empi[p.PrintedMRN] != nil || isPerson[p.PrintedMRN] {
					t.Errorf("%s: printed MRN %s belongs to a patient", where, p.PrintedMRN)
				}
			case KindNearTwin:
				a, b := empi[p.MRN], empi[p.TwinMRN]
				if a == nil || b == nil || p.MRN == p.TwinMRN {
					t.Errorf("%s: twins %s and %s not both in the EMPI", where, p.MRN, p.TwinMRN)
					continue
				}
				// family, birth_date and the address agree; given and MRN do not.
				for _, c := range []int{1, 3, 5, 6, 7, 8, 9} {
					if a[c] != b[c] {
						t.Errorf("%s: twins differ in %s: %q, %q", where, EMPIHeader[c], a[c], b[c])
					}
				}
				if a[2] == b[2] {
					t.Errorf("%s: twins share the first name %q", where, a[2])
				}
				for _, m := range []string{p.MRN, p.TwinMRN} {
					if !isPerson[m] {
						twins[m] = true
					}
				}
			case KindContinuation:
			default:
				t.Errorf("%s: kind %q", where, p.Kind)
			}
		}
	}
	for _, k := range []string{KindFull, KindContinuation, KindNameDOB, KindWrongMRN, KindNotInEMPI, KindNearTwin} {
		if kinds[k] == 0 {
			t.Errorf("no %s page in %v", k, kinds)
		}
	}
	if variants == 0 {
		t.Error("no page printed a variant")
	}
	if got, want := len(rows)-1, len(people)-len(out)+len(twins); got != want {
		t.Errorf("empi.csv has %d rows, want %d people - %d out + %d twins", got, len(people), len(out), len(twins))
	}
}

// checkPages checks that each PDF has the pages its truth lists.
func checkPages(t *testing.T, dir string, truth *Truth) {
	t.Helper()
	for _, doc := range truth.Documents {
		data, err := os.ReadFile(filepath.Join(dir, doc.File))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(checkPDF(t, data)); n != len(doc.Pages) {
			t.Errorf("%s: %d pages in PDF, %d in truth", doc.File, n, len(doc.Pages))
		}
	}
}

// TestRenderMissingFields renders every label style for records that lack a name, a
// birth date or an MRN: each must print what it has and differ from the full record.
func TestRenderMissingFields(t *testing.T) {
	people := loadSplink(t, 1)
	full := people[0]
	for l := range labelStyles {
		spec := PageSpec{Person: &full, DocType: chartscan.DocTypeProgressNote, DateOfService: "2021-05-06", Label: l, Seed: 1}
		want := RenderPage(spec, 50)
		for _, drop := range []func(*chartscan.Patient){
			func(p *chartscan.Patient) { p.MRN = "" },
			func(p *chartscan.Patient) { p.Given, p.Family = "", "" },
			func(p *chartscan.Patient) { p.BirthDate = "" },
			func(p *chartscan.Patient) { p.Given = "" },
		} {
			p := full
			drop(&p.Printed)
			spec.Person = &p
			if bytes.Equal(RenderPage(spec, 50).Pix, want.Pix) {
				t.Errorf("label %d: page without a field looks like the full one", l)
			}
		}
	}
}

func TestGenerateDistractors(t *testing.T) {
	people := loadSplink(t, 4)[:60]
	opt := benchmarkOptions
	opt.Documents = 3
	plain, padded := t.TempDir(), t.TempDir()
	if _, err := Generate(people, opt, plain); err != nil {
		t.Fatal(err)
	}
	opt.Distractors = 5000
	truth, err := Generate(people, opt, padded)
	if err != nil {
		t.Fatal(err)
	}
	base := readEMPI(t, filepath.Join(plain, "empi.csv"))
	rows := readEMPI(t, filepath.Join(padded, "empi.csv"))
	// The charts' own records come first and are unchanged; the distractors follow.
	if len(rows) < len(base)+4990 || len(rows) > len(base)+5000 {
		t.Fatalf("empi.csv has %d rows, want %d + about 5000", len(rows), len(base))
	}
	for i := range base {
		if !slices.Equal(base[i], rows[i]) {
			t.Fatalf("row %d changed with distractors: %v, was %v", i, rows[i], base[i])
		}
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r[0]] {
			t.Errorf("MRN %s twice in empi.csv", r[0])
		}
		seen[r[0]] = true
	}
	inEMPI := map[string]bool{}
	for _, r := range base {
		inEMPI[r[0]] = true
	}
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			for _, m := range []string{p.MRN, p.PrintedMRN, p.TwinMRN} {
				if m != "" && seen[m] && !inEMPI[m] {
					t.Errorf("%s page %d: MRN %s printed or meant for a chart is a distractor's", d.File, p.Page, m)
				}
			}
		}
	}
	// Namesakes: the distractors share surnames with the charts' people.
	families := map[string]bool{}
	for _, r := range base {
		families[strings.ToLower(r[1])] = true
	}
	shared := 0
	for _, r := range rows[len(base):] {
		if families[strings.ToLower(r[1])] {
			shared++
		}
	}
	if shared < 100 {
		t.Errorf("only %d of the distractors share a surname with the charts' people", shared)
	}
	opt.Distractors = -1
	if _, err := Generate(people, opt, t.TempDir()); !errors.Is(err, ErrOptions) {
		t.Errorf("Distractors -1: %v, want ErrOptions", err)
	}
}

func TestTruthPrintsWhatThePagePrints(t *testing.T) {
	people := loadSplink(t, 4)[:60]
	opt := benchmarkOptions
	opt.Documents = 4
	truth, err := Generate(people, opt, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	byMRN := map[string]Person{}
	for _, p := range people {
		byMRN[p.EMPI.MRN] = p
	}
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			where := fmt.Sprintf("%s page %d (%s)", d.File, p.Page, p.Kind)
			if p.Kind == KindContinuation {
				if p.Printed != nil {
					t.Errorf("%s: a continuation page prints %+v", where, *p.Printed)
				}
				continue
			}
			pr := p.Printed
			if pr == nil || pr.Family == "" || pr.Given == "" || pr.BirthDate == "" {
				t.Errorf("%s: printed %+v, want a name and a birth date", where, pr)
				continue
			}
			switch {
			case p.Kind == KindNameDOB && pr.MRN != "":
				t.Errorf("%s: prints MRN %s", where, pr.MRN)
			case p.Kind == KindWrongMRN && pr.MRN != p.PrintedMRN:
				t.Errorf("%s: prints MRN %s, truth says %s", where, pr.MRN, p.PrintedMRN)
			case p.Kind == KindFull && !p.Variant:
				if e := byMRN[p.MRN].EMPI; e.Family != pr.Family || e.BirthDate != pr.BirthDate || e.MRN != pr.MRN {
					t.Errorf("%s: prints %+v, the EMPI record is %+v", where, *pr, e)
				}
			}
		}
	}
}
