package synth

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/chartscan/chartscan"
)

func TestMain(m *testing.M) {
	api.DisableConfigDir() // keep pdfcpu from writing a config directory under $HOME
	os.Exit(m.Run())
}

const splinkPath = "../testdata/identities/splink/fake_1000.csv"

func loadSplink(t *testing.T, seed int64) []Person {
	t.Helper()
	return loadSplinkRecord(t, seed, GoldenRecord)
}

// loadSplinkRecord is loadSplink with the EMPI's version chosen: the sample and the
// classic outputs, frozen byte for byte, were made with FirstRecord.
func loadSplinkRecord(t *testing.T, seed int64, rec EMPIRecord) []Person {
	t.Helper()
	f, err := os.Open(splinkPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	people, err := LoadSplink(f, seed, rec)
	if err != nil {
		t.Fatalf("LoadSplink: %v", err)
	}
	return people
}

func TestValidMRN(t *testing.T) {
	tests := []struct {
		mrn  string
		want bool
	}{
		{"123456782", true}, // 1234567 8 -> Luhn check 2
		{"123456781", false},
		{"000000000", true},
		{"12345678", false},
		{"1234567820", false},
		{"12345678x", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidMRN(tt.mrn); got != tt.want {
			t.Errorf("ValidMRN(%q) = %v, want %v", tt.mrn, got, tt.want)
		}
	}
	// The textbook Luhn example: 7992739871 has check digit 3.
	if got := luhnDigit("7992739871"); got != 3 {
		t.Errorf("luhnDigit(7992739871) = %d, want 3", got)
	}
}

func TestLoadSplinkFake1000(t *testing.T) {
	people := loadSplink(t, 1)
	if len(people) < 200 {
		t.Errorf("got %d people, want at least 200 of the 251 clusters", len(people))
	}
	mrns := map[string]bool{}
	clusters := map[string]bool{}
	for _, p := range people {
		if !ValidMRN(p.EMPI.MRN) {
			t.Errorf("cluster %s: invalid MRN %q", p.Cluster, p.EMPI.MRN)
		}
		if mrns[p.EMPI.MRN] {
			t.Errorf("cluster %s: duplicate MRN %q", p.Cluster, p.EMPI.MRN)
		}
		mrns[p.EMPI.MRN] = true
		if clusters[p.Cluster] {
			t.Errorf("cluster %s appears twice", p.Cluster)
		}
		clusters[p.Cluster] = true
		if !complete(p.EMPI) || p.EMPI.Sex == "" {
			t.Errorf("cluster %s: incomplete EMPI record %+v", p.Cluster, p.EMPI)
		}
		if diff := cmp.Diff(p.EMPI, p.Printed); diff != "" {
			t.Errorf("cluster %s: Printed differs from EMPI (-empi +printed):\n%s", p.Cluster, diff)
		}
		for _, v := range p.Variants {
			if v.MRN != p.EMPI.MRN || v.Sex != p.EMPI.Sex {
				t.Errorf("cluster %s: variant %+v lacks the person's MRN or sex", p.Cluster, v)
			}
		}
	}

	want := Person{
		// The golden record: four names carried once each, of which Allen Robert has the
		// family name two rows carry and the given name three do; 1971-06-24 (three);
		// London (the first of two cities seen once each). Every row differs from it.
		EMPI:    chartscan.Patient{MRN: people[0].EMPI.MRN, Family: "Allen", Given: "Robert", BirthDate: "1971-06-24", Sex: "male", City: "London"},
		Cluster: "0",
		Variants: []chartscan.Patient{
			{Family: "Alan", Given: "Robert", BirthDate: "1971-06-24"},
			{Family: "Allen", Given: "Robert", BirthDate: "1971-05-24"},
			{Family: "Allen", Given: "Rob", BirthDate: "1971-06-24", City: "London"},
			{Family: "Alen", Given: "Robert", BirthDate: "1971-06-24", City: "Lonon"},
		},
	}
	want.Printed = want.EMPI
	for i := range want.Variants {
		want.Variants[i].MRN, want.Variants[i].Sex = want.EMPI.MRN, "male"
	}
	if diff := cmp.Diff(want, people[0]); diff != "" {
		t.Errorf("first person (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff(people, loadSplink(t, 1)); diff != "" {
		t.Errorf("LoadSplink not deterministic for one seed:\n%s", diff)
	}
	if other := loadSplink(t, 2); other[0].EMPI.MRN == people[0].EMPI.MRN {
		t.Errorf("seeds 1 and 2 gave the same first MRN %s", other[0].EMPI.MRN)
	}
}

func TestLoadSplinkRows(t *testing.T) {
	const header = "unique_id,first_name,surname,dob,city,email,cluster\n"
	tests := []struct {
		name    string
		csv     string
		rec     EMPIRecord
		want    []chartscan.Patient // EMPI records, MRN and Sex cleared
		wantErr error
	}{
		{
			name: "golden record: each field's most common value",
			// Splink's cluster 0: a typo'd surname in the first row, a date one digit off
			// in the second, a nickname in the third.
			csv: header + "0,Robert,Alan,1971-06-24,,,0\n1,Robert,Allen,1971-05-24,,,0\n" +
				"2,Rob,Allen,1971-06-24,London,,0\n3,Robert,Alen,1971-06-24,Lonon,,0\n",
			want: []chartscan.Patient{{Family: "Allen", Given: "Robert", BirthDate: "1971-06-24", City: "London"}},
		},
		{
			name: "golden record: names the other way round make no new name",
			// Per field Brown and Brown (three rows each), which only row 2's slip carries
			// together; the names carried twice are Brown Florence and Florence Brown, and
			// the first seen of the two wins.
			csv: header + "0,Florence,Brown,1992-02-28,,,9\n1,Brown,Florence,1992-02-28,,,9\n" +
				"2,Brown,Brown,1992-02-28,,,9\n3,Florence,Brown,1992-02-28,,,9\n4,Brown,Florence,1992-02-28,,,9\n",
			want: []chartscan.Patient{{Family: "Brown", Given: "Florence", BirthDate: "1992-02-28"}},
		},
		{
			name: "golden record: a date that does not parse never wins",
			csv:  header + "0,Isla,Hall,1985-02-30,,,4\n1,Isla,Hall,1985-02-30,,,4\n2,Isla,Hall,1985-02-07,,,4\n",
			want: []chartscan.Patient{{Family: "Hall", Given: "Isla", BirthDate: "1985-02-07"}},
		},
		{
			name: "first record: the first complete row as written",
			csv: header + "0,Robert,Alan,1971-06-24,,,0\n1,Robert,Allen,1971-05-24,,,0\n" +
				"2,Rob,Allen,1971-06-24,London,,0\n3,Robert,Alen,1971-06-24,Lonon,,0\n",
			rec:  FirstRecord,
			want: []chartscan.Patient{{Family: "Alan", Given: "Robert", BirthDate: "1971-06-24"}},
		},
		{
			name: "first complete row wins",
			rec:  FirstRecord,
			csv: header + "0,,Dean,2015-03-03,,,3\n1,Evie,Dean,2015-03-03,Portsmouth,,3\n" +
				"2,Evie,Deen,2015-03-03,,,3\n",
			want: []chartscan.Patient{{Family: "Dean", Given: "Evie", BirthDate: "2015-03-03", City: "Portsmouth"}},
		},
		{
			name: "cluster without a complete row is skipped",
			csv:  header + "0,Grace,,1997-04-26,Hull,,1\n1,Grace,Kelly,1991-02-30,,,1\n2,Isla,Hall,1985-02-07,,,4\n",
			want: []chartscan.Patient{{Family: "Hall", Given: "Isla", BirthDate: "1985-02-07"}},
		},
		{name: "no usable row", csv: header + "0,,,2015-03-03,,,3\n", wantErr: ErrNoPeople},
		{name: "empty", csv: header, wantErr: ErrNoPeople},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			people, err := LoadSplink(strings.NewReader(tt.csv), 7, tt.rec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var got []chartscan.Patient
			for _, p := range people {
				p.EMPI.MRN, p.EMPI.Sex = "", ""
				got = append(got, p.EMPI)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EMPI records (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := LoadSplink(strings.NewReader("a,b\n1,2\n"), 1, GoldenRecord); err == nil {
		t.Error("LoadSplink with missing columns: got nil error")
	}
}

func TestFormatDate(t *testing.T) {
	tests := []struct {
		f    DateFormat
		in   string
		want string
	}{
		{DateUS, "1962-03-14", "03/14/1962"},
		{DateISO, "1962-03-14", "1962-03-14"},
		{DateDMonY, "1962-03-14", "14-Mar-1962"},
		{DateLong, "1962-03-14", "March 14, 1962"},
		{DateUS, "", ""},
		{DateLong, "1991-02-30", "1991-02-30"},
	}
	for _, tt := range tests {
		if got := formatDate(tt.in, tt.f); got != tt.want {
			t.Errorf("formatDate(%q, %d) = %q, want %q", tt.in, tt.f, got, tt.want)
		}
	}
}

func TestRenderPage(t *testing.T) {
	people := loadSplink(t, 1)
	base := PageSpec{Person: &people[0], DocType: chartscan.DocTypeLab, DateOfService: "2021-05-06",
		Label: LabelAddressograph, Skew: 0.7, Noise: 0.001, Seed: 42}
	const dpi = 100
	letter := image.Rect(0, 0, 850, 1100)
	tests := []struct {
		name   string
		change func(*PageSpec)
		bounds image.Rectangle
	}{
		{"upright", func(*PageSpec) {}, letter},
		{"rotate 90", func(s *PageSpec) { s.Rotate = 90 }, image.Rect(0, 0, 1100, 850)},
		{"rotate 180", func(s *PageSpec) { s.Rotate = 180 }, letter},
		{"rotate 270", func(s *PageSpec) { s.Rotate = 270 }, image.Rect(0, 0, 1100, 850)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base
			tt.change(&spec)
			a, b := RenderPage(spec, dpi), RenderPage(spec, dpi)
			if a.Bounds() != tt.bounds {
				t.Errorf("bounds = %v, want %v", a.Bounds(), tt.bounds)
			}
			if !bytes.Equal(a.Pix, b.Pix) {
				t.Error("two renders of one spec differ")
			}
		})
	}

	other := base
	other.Seed = 43
	if bytes.Equal(RenderPage(base, dpi).Pix, RenderPage(other, dpi).Pix) {
		t.Error("different seeds gave the same page")
	}

	// A continuation page must carry no identifiers, so whose it is cannot change it.
	cont := base
	cont.Continuation, cont.PageNumber = true, 2
	alone := cont
	alone.Person = &people[1]
	if !bytes.Equal(RenderPage(cont, dpi).Pix, RenderPage(alone, dpi).Pix) {
		t.Error("continuation page depends on the person")
	}
	full := base
	full.Person = &people[1]
	if bytes.Equal(RenderPage(base, dpi).Pix, RenderPage(full, dpi).Pix) {
		t.Error("full page does not depend on the person")
	}
}

// checkPDF validates a PDF with pdfcpu and returns the size of the one image on each page.
func checkPDF(t *testing.T, data []byte) []image.Point {
	t.Helper()
	conf := model.NewDefaultConfiguration()
	if err := api.Validate(bytes.NewReader(data), conf); err != nil {
		t.Fatalf("pdfcpu validate: %v", err)
	}
	n, err := api.PageCount(bytes.NewReader(data), conf)
	if err != nil {
		t.Fatalf("pdfcpu page count: %v", err)
	}
	pages, err := api.ExtractImagesRaw(bytes.NewReader(data), nil, model.NewDefaultConfiguration())
	if err != nil {
		t.Fatalf("pdfcpu extract images: %v", err)
	}
	if len(pages) != n {
		t.Fatalf("images for %d pages, want %d", len(pages), n)
	}
	var sizes []image.Point
	for i, imgs := range pages {
		if len(imgs) != 1 {
			t.Errorf("page %d: %d images, want 1", i+1, len(imgs))
		}
		for _, img := range imgs {
			// pdfcpu leaves Width and Height unset here; decode the image header instead.
			cfg, format, err := image.DecodeConfig(img)
			if err != nil {
				t.Fatalf("page %d: decode %s image: %v", i+1, img.FileType, err)
			}
			if format != "jpeg" && format != "png" {
				t.Errorf("page %d: image format %s", i+1, format)
			}
			sizes = append(sizes, image.Pt(cfg.Width, cfg.Height))
		}
	}
	return sizes
}

func TestWritePDF(t *testing.T) {
	people := loadSplink(t, 1)
	const dpi = 100
	var pages []*image.Gray
	for i, rot := range []int{0, 90, 0} {
		pages = append(pages, RenderPage(PageSpec{Person: &people[i], DocType: DocTypes[i],
			DateOfService: "2020-01-01", Rotate: rot, Seed: int64(i)}, dpi))
	}
	want := []image.Point{{850, 1100}, {1100, 850}, {850, 1100}}
	for _, enc := range []Encoding{Bilevel, GreyJPEG} {
		var a, b bytes.Buffer
		if err := WritePDF(&a, pages, dpi, enc); err != nil {
			t.Fatalf("WritePDF(%d): %v", enc, err)
		}
		if err := WritePDF(&b, pages, dpi, enc); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("encoding %d: two writes differ", enc)
		}
		if diff := cmp.Diff(want, checkPDF(t, a.Bytes())); diff != "" {
			t.Errorf("encoding %d: image sizes (-want +got):\n%s", enc, diff)
		}
		dims, err := api.PageDims(bytes.NewReader(a.Bytes()), model.NewDefaultConfiguration())
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range dims {
			if d.Width != float64(want[i].X)*72/dpi || d.Height != float64(want[i].Y)*72/dpi {
				t.Errorf("encoding %d page %d: MediaBox %gx%g, want the image at %d dpi", enc, i+1, d.Width, d.Height, dpi)
			}
		}
	}
	if err := WritePDF(&bytes.Buffer{}, nil, dpi, Bilevel); err == nil {
		t.Error("WritePDF with no pages: got nil error")
	}
}

// readEMPI returns the rows of an empi.csv, header first.
func readEMPI(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkTruth checks the invariants of a generated set against its files.
func checkTruth(t *testing.T, dir string, truth *Truth, people []Person) {
	t.Helper()
	rows := readEMPI(t, filepath.Join(dir, "empi.csv"))
	if diff := cmp.Diff(EMPIHeader, rows[0]); diff != "" {
		t.Errorf("empi.csv header (-want +got):\n%s", diff)
	}
	inEMPI := map[string]bool{}
	for _, r := range rows[1:] {
		inEMPI[r[0]] = true
	}
	out := map[string]bool{}
	for _, doc := range truth.Documents {
		data, err := os.ReadFile(filepath.Join(dir, doc.File))
		if err != nil {
			t.Fatal(err)
		}
		sizes := checkPDF(t, data)
		if len(sizes) != len(doc.Pages) {
			t.Errorf("%s: %d pages in PDF, %d in truth", doc.File, len(sizes), len(doc.Pages))
		}
		prev := ""
		for i, p := range doc.Pages {
			if p.Page != i+1 {
				t.Errorf("%s: page %d numbered %d", doc.File, i+1, p.Page)
			}
			if p.Kind == KindContinuation && p.MRN != prev {
				t.Errorf("%s page %d: continuation starts a patient's run", doc.File, p.Page)
			}
			if p.InEMPI != inEMPI[p.MRN] {
				t.Errorf("%s page %d: in_empi %v but empi.csv says %v", doc.File, p.Page, p.InEMPI, inEMPI[p.MRN])
			}
			if !p.InEMPI {
				out[p.MRN] = true
			}
			if i < len(sizes) && (p.Rotation == 90 || p.Rotation == 270) != (sizes[i].X > sizes[i].Y) {
				t.Errorf("%s page %d: rotation %d but image %v", doc.File, p.Page, p.Rotation, sizes[i])
			}
			prev = p.MRN
		}
	}
	if got, want := len(rows)-1+len(out), len(people); got != want {
		t.Errorf("empi.csv rows + not-in-EMPI patients = %d, want %d people", got, want)
	}
}

func TestGenerate(t *testing.T) {
	people := loadSplink(t, 3)[:30]
	opt := Options{Seed: 9, Documents: 3, PatientsPerDocument: [2]int{1, 3}, PagesPerPatient: [2]int{1, 3},
		ContinuationShare: 0.5, MaxSkew: 2, Noise: 0.002, RotateShare: 0.3, DPI: 72, NotInEMPIShare: 0.3}
	dirA, dirB := t.TempDir(), t.TempDir()
	truth, err := Generate(people, opt, dirA)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if _, err := Generate(people, opt, dirB); err != nil {
		t.Fatal(err)
	}
	checkTruth(t, dirA, truth, people)
	var onDisk Truth
	data, _ := os.ReadFile(filepath.Join(dirA, "truth.json"))
	if err := json.Unmarshal(data, &onDisk); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*truth, onDisk); diff != "" {
		t.Errorf("truth.json differs from the returned Truth:\n%s", diff)
	}
	names, _ := filepath.Glob(filepath.Join(dirA, "*"))
	if len(names) != opt.Documents+2 {
		t.Errorf("got files %v, want %d PDFs, truth.json and empi.csv", names, opt.Documents)
	}
	for _, a := range names {
		x, _ := os.ReadFile(a)
		y, _ := os.ReadFile(filepath.Join(dirB, filepath.Base(a)))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with one seed", filepath.Base(a))
		}
	}
}

func TestGenerateOptions(t *testing.T) {
	people := loadSplink(t, 1)[:5]
	tests := []struct {
		name string
		opt  Options
	}{
		{"negative documents", Options{Documents: -1}},
		{"empty patient range", Options{PatientsPerDocument: [2]int{3, 2}}},
		{"zero pages", Options{PagesPerPatient: [2]int{0, 2}}},
		{"share above one", Options{ContinuationShare: 1.5}},
		{"negative noise", Options{Noise: -0.1}},
		{"tiny dpi", Options{DPI: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Generate(people, tt.opt, t.TempDir()); !errors.Is(err, ErrOptions) {
				t.Errorf("err = %v, want ErrOptions", err)
			}
		})
	}
	if _, err := Generate(nil, Options{}, t.TempDir()); !errors.Is(err, ErrNoPeople) {
		t.Errorf("no people: err = %v, want ErrNoPeople", err)
	}
}
