package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
)

func TestLayoutNames(t *testing.T) {
	want := []string{"inline", "addressograph", "nameblock", "unitno", "grid", "imprint", "sticker",
		"footer", "twocol", "labmono", "script"}
	if diff := cmp.Diff(want, LayoutNames()); diff != "" {
		t.Errorf("LayoutNames (-want +got):\n%s", diff)
	}
	for i, name := range want {
		l, err := ParseLayout(name)
		if err != nil || l != LabelStyle(i) {
			t.Errorf("ParseLayout(%q) = %d, %v; want %d", name, l, err, i)
		}
		if got := l.String(); got != name {
			t.Errorf("LabelStyle(%d).String() = %q, want %q", i, got, name)
		}
	}
	// The classic styles keep their values: truth files and callers hold them.
	for l, want := range map[LabelStyle]int{LabelInline: 0, LabelAddressograph: 1, LabelNameBlock: 2, LabelUnitNo: 3} {
		if int(l) != want {
			t.Errorf("%s = %d, want %d", l, l, want)
		}
	}
	if l, err := ParseLayout(" Grid "); err != nil || l != LabelGrid {
		t.Errorf("ParseLayout(\" Grid \") = %v, %v; want grid", l, err)
	}
	if _, err := ParseLayout("poster"); !errors.Is(err, ErrOptions) {
		t.Errorf("ParseLayout(poster): err = %v, want ErrOptions", err)
	}
	if got := LabelStyle(99).String(); got != "LabelStyle(99)" {
		t.Errorf("LabelStyle(99).String() = %q", got)
	}
}

func TestNumberText(t *testing.T) {
	tests := []struct {
		n       PageNumbering
		k, of   int
		want    string
		comment string
	}{
		{NumberPage, 2, 3, "Page 2", ""},
		{NumberPage, 0, 0, "Page 1", "zero page is the first"},
		{NumberPageOf, 2, 3, "Page 2 of 3", ""},
		{NumberPageOf, 1, 1, "Page 1 of 1", ""},
		{NumberPg, 2, 3, "Pg 2/3", ""},
		{NumberOf, 3, 3, "3 of 3", ""},
		{NumberNone, 2, 3, "", ""},
		{NumberPageOf, 4, 0, "Page 4 of 4", "unknown total"},
	}
	for _, tt := range tests {
		spec := PageSpec{Numbering: tt.n, PageNumber: tt.k, PageCount: tt.of}
		if got := spec.numberText(); got != tt.want {
			t.Errorf("numbering %d page %d of %d = %q, want %q %s", tt.n, tt.k, tt.of, got, tt.want, tt.comment)
		}
	}
}

// TestRenderLayouts renders every family for a full record and for records lacking a
// given name, a birth date or an MRN, with and without distractors and page numbers.
// Continuation pages must not depend on the person.
func TestRenderLayouts(t *testing.T) {
	people := loadSplink(t, 1)
	used := map[string]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for l := range labelStyles {
		t.Run(l.String(), func(t *testing.T) {
			for i, drop := range []func(*chartscan.Patient){
				func(*chartscan.Patient) {},
				func(p *chartscan.Patient) { p.Given = "" },
				func(p *chartscan.Patient) { p.BirthDate = "" },
				func(p *chartscan.Patient) { p.MRN = "" },
				func(p *chartscan.Patient) { p.Sex, p.Given = "", "" },
			} {
				p := people[i]
				drop(&p.Printed)
				for seed := range int64(4) {
					spec := PageSpec{Person: &p, DocType: DocTypes[int(seed)%len(DocTypes)], DateOfService: "2022-09-30",
						Label: l, DateFormat: DateFormat(seed), Seed: seed, PageNumber: 1, PageCount: 2,
						Numbering: PageNumbering(seed), NumberAtTop: seed%2 == 1}
					if seed > 0 {
						spec.Extras = NewExtras(rng, used, spec.DateOfService)
					}
					a, b := RenderPage(spec, 50), RenderPage(spec, 50)
					if !bytes.Equal(a.Pix, b.Pix) {
						t.Errorf("record %d seed %d: two renders differ", i, seed)
					}
				}
			}
			cont := PageSpec{Person: &people[0], DocType: chartscan.DocTypeProgressNote, Label: l, Continuation: true,
				PageNumber: 2, PageCount: 3, Numbering: NumberPageOf, Extras: NewExtras(rng, used, "2022-09-30"), Seed: 5}
			other := cont
			other.Person = &people[1]
			if !bytes.Equal(RenderPage(cont, 50).Pix, RenderPage(other, 50).Pix) {
				t.Error("continuation page depends on the person")
			}
		})
	}
}

func TestNewExtras(t *testing.T) {
	people := loadSplink(t, 1)
	used, mrns := map[string]bool{}, map[string]bool{}
	for _, p := range people {
		used[p.EMPI.MRN], mrns[p.EMPI.MRN] = true, true
	}
	digits := regexp.MustCompile(`[0-9]+`)
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[string]bool{}
	for range 2000 {
		e := NewExtras(rng, used, "2020-02-29")
		for _, n := range []string{e.Account, e.Visit, e.Phone} {
			for _, d := range digits.FindAllString(n, -1) {
				if mrns[d] {
					t.Fatalf("distractor %q is an EMPI MRN", n)
				}
			}
		}
		for _, n := range []string{e.Account, e.Visit} {
			if seen[n] {
				t.Errorf("number %s drawn twice", n)
			}
			seen[n] = true
		}
		if e.Attending == "" || e.Location == "" || e.Admitted > "2020-02-29" || e.Printed < "2020-02-29" {
			t.Errorf("extras %+v", e)
		}
	}
}

// layoutOptions make every family, with continuation pages and page numbers.
var layoutOptions = Options{
	Seed: 11, Documents: 8, PatientsPerDocument: [2]int{2, 3}, PagesPerPatient: [2]int{1, 4},
	ContinuationShare: 0.6, DPI: 50, NotInEMPIShare: 0.1, MaxSkew: 1, Noise: 0.001, PageNumbers: true,
	Labels: []LabelStyle{LabelInline, LabelAddressograph, LabelNameBlock, LabelUnitNo, LabelGrid, LabelImprint,
		LabelSticker, LabelFooter, LabelTwoColumn, LabelLabMono, LabelScript},
}

func TestGenerateLayouts(t *testing.T) {
	people := loadSplink(t, 2)[:80]
	dirA, dirB := t.TempDir(), t.TempDir()
	truth, err := Generate(people, layoutOptions, dirA)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	checkTruth(t, dirA, truth, people)
	if _, err := Generate(people, layoutOptions, dirB); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"truth.json", "chart-001.pdf", "chart-008.pdf"} {
		a, _ := os.ReadFile(filepath.Join(dirA, name))
		b, _ := os.ReadFile(filepath.Join(dirB, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with one seed", name)
		}
	}

	names := map[string]bool{}
	for _, n := range LayoutNames() {
		names[n] = true
	}
	// The numbering styles a document may print, for page k of n.
	numberings := map[string]func(k, n int) string{
		"Page k of N": func(k, n int) string { return fmt.Sprintf("Page %d of %d", k, n) },
		"Pg k/N":      func(k, n int) string { return fmt.Sprintf("Pg %d/%d", k, n) },
		"k of N":      func(k, n int) string { return fmt.Sprintf("%d of %d", k, n) },
		"Page k":      func(k, _ int) string { return fmt.Sprintf("Page %d", k) },
		"none":        func(int, int) string { return "" },
	}
	layouts, styles := map[string]int{}, map[string]int{}
	for _, doc := range truth.Documents {
		// Split the file into printed documents: an identifying page and its continuations.
		var runs [][]TruthPage
		for _, p := range doc.Pages {
			if p.Kind != KindContinuation {
				runs = append(runs, nil)
			}
			runs[len(runs)-1] = append(runs[len(runs)-1], p)
		}
		for _, run := range runs {
			where := fmt.Sprintf("%s page %d", doc.File, run[0].Page)
			if !names[run[0].Layout] {
				t.Errorf("%s: layout %q", where, run[0].Layout)
			}
			layouts[run[0].Layout]++
			var printed []string
			for _, p := range run {
				if p.Layout != run[0].Layout {
					t.Errorf("%s: continuation page %d has layout %q, its document %q", where, p.Page, p.Layout, run[0].Layout)
				}
				printed = append(printed, p.Numbering)
			}
			style := ""
			for name, f := range numberings {
				var want []string
				for k := range run {
					want = append(want, f(k+1, len(run)))
				}
				if cmp.Equal(want, printed) {
					style = name
				}
			}
			if style == "" {
				t.Errorf("%s: a document of %d pages numbered %q", where, len(run), printed)
			}
			styles[style]++
		}
	}
	if len(layouts) < 8 {
		t.Errorf("only layouts %v", layouts)
	}
	if len(styles) < 3 {
		t.Errorf("only numbering styles %v", styles)
	}
}

// Hashes of what Options with no layout options gave before the layout families, taken
// from the code of that time: the default output must not change.
var classicOutput = []struct {
	name string
	opt  Options
	sha  map[string]string
}{
	{"zero", Options{}, map[string]string{
		"chart-001.pdf": "1a0db1ff80cbd20d54805c2b7ee90ae1aa89a3d1c66a102d58b37ecd9f401798",
		"empi.csv":      "db715a7602c038b655fa0c84eb4cb4b4fcf0adad999c629da8c8ffc94e3d23e8",
		"truth.json":    "260f2aff2e92bc8d70b3ffccfa4ae728338b487141dc5417a687433d090f7ba3", // without layout and numbering
	}},
	{"benchmark shares", Options{Seed: 7, Documents: 4, PatientsPerDocument: [2]int{1, 3}, PagesPerPatient: [2]int{1, 3},
		ContinuationShare: 0.35, NotInEMPIShare: 0.1, NearTwinShare: 0.1, NameDOBShare: 0.15, WrongMRNShare: 0.1,
		VariantShare: 0.5, MaxSkew: 1.5, Noise: 0.002, DPI: 100, MarkNotInEMPI: true}, map[string]string{
		"chart-001.pdf": "f79c86ae9731d9f1efd7019f495b1e24f0c2e228dceb996048c77cec4b7b9d6d",
		"chart-002.pdf": "4efe45c6a6f183ba2b144233c3c95ef5849b96e6124afc3105d00a82c907901b",
		"chart-003.pdf": "903c72214863df1220a1900110d557343aa7313667cab6c2abbcd528b11026b8",
		"chart-004.pdf": "92cef18103c21529e1505185c59bcf24ef9634f0a7daf5edfe6d290616d36973",
		"empi.csv":      "5357778636b660d274569d939c85e054c60d77ee28f38cd67c1f0dfff60c4b5b",
		"truth.json":    "fca83cecf6a483c64ccd275578c722edb4d1a195cd2c2e96a23983e1e61017e3",
	}},
}

func TestClassicOutputUnchanged(t *testing.T) {
	people := loadSplinkRecord(t, 1, FirstRecord)[:40]
	for _, tt := range classicOutput {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			truth, err := Generate(people, tt.opt, dir)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.sha {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if name == "truth.json" {
					data = truthWithoutLayouts(t, truth)
				}
				if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
					t.Errorf("%s changed", name)
				}
			}
			for _, doc := range truth.Documents {
				for _, p := range doc.Pages {
					if l, err := ParseLayout(p.Layout); err != nil || l >= classicLabels {
						t.Errorf("%s page %d: layout %q", doc.File, p.Page, p.Layout)
					}
					if !strings.HasPrefix(p.Numbering, "Page ") || strings.Contains(p.Numbering, "of") {
						t.Errorf("%s page %d: numbering %q", doc.File, p.Page, p.Numbering)
					}
				}
			}
		})
	}
}

// truthWithoutLayouts returns truth.json as written before pages had a layout and a
// numbering.
func truthWithoutLayouts(t *testing.T, truth *Truth) []byte {
	t.Helper()
	type page struct {
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
	}
	type document struct {
		File  string `json:"file"`
		Pages []page `json:"pages"`
	}
	var old struct {
		Documents []document `json:"documents"`
	}
	for _, d := range truth.Documents {
		od := document{File: d.File}
		for _, p := range d.Pages {
			od.Pages = append(od.Pages, page{p.Page, p.MRN, p.InEMPI, p.Kind, p.DocType, p.DateOfService, p.Rotation,
				p.PrintedMRN, p.TwinMRN, p.Variant})
		}
		old.Documents = append(old.Documents, od)
	}
	js, err := json.MarshalIndent(old, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(js, '\n')
}

// TestLayoutsOCR renders one page of each family at 300 dpi, scans it as the PDF would
// (a little skew, noise, black and white) and reads it with the tesseract binary: the
// MRN, the family name and the birth year must be legible.
func TestLayoutsOCR(t *testing.T) {
	if testing.Short() {
		t.Skip("OCR of every layout takes a while")
	}
	if _, err := exec.LookPath("tesseract"); err != nil {
		t.Fatal("tesseract not installed (deploy/install.sh installs it)")
	}
	people := loadSplink(t, 1)
	used := map[string]bool{}
	for _, p := range people {
		used[p.EMPI.MRN] = true
	}
	rng := rand.New(rand.NewPCG(7, 7))
	dir := t.TempDir()
	for l := range labelStyles {
		t.Run(l.String(), func(t *testing.T) {
			p := &people[10+int(l)]
			spec := PageSpec{Person: p, DocType: DocTypes[int(l)%len(DocTypes)], DateOfService: "2023-03-08",
				Label: l, DateFormat: DateFormat(int(l) % int(dateFormats)), PageNumber: 1, PageCount: 2,
				Numbering: NumberPageOf, Extras: NewExtras(rng, used, "2023-03-08"), Skew: 0.4, Noise: 0.0005, Seed: int64(l)}
			text := ocr(t, RenderPage(spec, 300), filepath.Join(dir, l.String()+".png"))
			year, _, _ := strings.Cut(p.Printed.BirthDate, "-")
			for _, want := range []string{p.Printed.MRN, strings.ToUpper(p.Printed.Family), year} {
				if !strings.Contains(strings.ToUpper(text), want) {
					t.Errorf("%q not in the OCR text:\n%s", want, text)
				}
			}
		})
	}
}

// ocr thresholds img at mid-grey, as a Bilevel PDF stores it, writes it to path and
// returns what tesseract reads.
func ocr(t *testing.T, img *image.Gray, path string) string {
	t.Helper()
	bw := image.NewGray(img.Bounds())
	for i, v := range img.Pix {
		if v >= 128 {
			bw.Pix[i] = 255
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, bw); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tesseract", path, "stdout")
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tesseract: %v", err)
	}
	return string(out)
}
