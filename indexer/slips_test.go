package indexer

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
)

// Slips that real charts carry — a birth date printed wrong on one page, an MRN misread
// by one digit, first and last names registered the other way round with a typo — must
// not split a patient's pages or send them all to review; a wrong name must.

func TestCompareNamesSwappedWithATypo(t *testing.T) {
	for _, tc := range []struct {
		family, given, recFamily, recGiven string
		wantFam, wantGiven                 string
	}{
		{"wheti", "theo", "theo", "white", LevelSwapped, LevelSwapped},
		{"amber", "dixon", "dixon", "ambre", LevelSwapped, LevelSwapped},
		{"white", "theo", "white", "theo", LevelExact, LevelExact},
		{"brown", "anna", "theo", "white", LevelDisagree, LevelDisagree},
		// One name exact the other way round, the other a slip in the 0.85 band, as a name
		// read the right way round may be ("DIXON, Roryn" for a record Robyn | Dixon).
		{"dixon", "roryn", "robyn", "dixon", LevelSwapped, LevelSwapped},
		{"moore", "oscar", "osacar", "moore", LevelSwapped, LevelSwapped},
		// Both only in the 0.85 band the other way round: two slips and a swap are too many.
		{"dixan", "roryn", "robyn", "dixon", LevelDisagree, LevelDisagree},
		// A name that only sounds alike the other way round is not a swap.
		{"dixon", "rabin", "robyn", "dixon", LevelDisagree, LevelDisagree},
	} {
		fam, giv := compareNames(tc.family, tc.given, tc.recFamily, tc.recGiven)
		if fam != tc.wantFam || giv != tc.wantGiven {
			t.Errorf("compareNames(%s, %s | %s, %s) = %s, %s; want %s, %s", tc.family, tc.given, tc.recFamily, tc.recGiven,
				fam, giv, tc.wantFam, tc.wantGiven)
		}
	}
}

func TestSegmentsUnderLuhnToleratesSlips(t *testing.T) {
	const valid = "208031716" // passes Luhn
	if !CheckDigitValid("luhn", valid) {
		t.Fatalf("test MRN %s must pass Luhn", valid)
	}
	misread := "288031716" // 0 read as 8: fails Luhn
	for _, tc := range []struct {
		name  string
		pages []PageEvidence
		want  [][]int // pages of each segment
		unc   []int   // uncertain pages
	}{
		{"same MRN, another birth date on page 2",
			[]PageEvidence{{Identifiers: ids(valid, "MILLS, Heidi", "1980-12-06")}, {Identifiers: ids(valid, "", "1981-01-03")}},
			[][]int{{0, 1}}, nil},
		{"MRN misread by one digit, another birth date",
			[]PageEvidence{{Identifiers: ids(valid, "", "1980-12-06")}, {Identifiers: ids(misread, "", "1981-01-03")}},
			[][]int{{0, 1}}, nil},
		{"same MRN but another name: a wrong label, a boundary to check",
			[]PageEvidence{{Identifiers: ids(valid, "MILLS, Heidi", "1980-12-06")}, {Identifiers: ids(valid, "OKAFOR, Ngozi", "1981-01-03")}},
			[][]int{{0}, {1}}, []int{0, 1}},
	} {
		var got [][]int
		var unc []int
		for _, s := range segments(tc.pages, "luhn") {
			got = append(got, s.Pages)
			unc = append(unc, s.Uncertain...)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: segments (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.unc, unc); diff != "" {
			t.Errorf("%s: uncertain pages (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestMRNVariantsRepairDigitSlips(t *testing.T) {
	const truth = "208031716"
	for _, slip := range []string{"288031716", "208031718" /* 6→8 */, "280031716" /* transposition */} {
		found := false
		for _, v := range MRNVariants(slip, "luhn") {
			found = found || v == truth
		}
		if !found && CheckDigitValid("luhn", slip) == false {
			t.Errorf("MRNVariants(%s, luhn) does not offer %s", slip, truth)
		}
	}
}

func TestCoverSheetFilesThePagesBehindIt(t *testing.T) {
	const mrn = "208031716"
	pat := chartscan.Patient{MRN: mrn, Family: "Mills", Given: "Heidi", BirthDate: "1980-12-06", Sex: "female"}
	lookup := func(e Evidence) ([]chartscan.Patient, error) { return []chartscan.Patient{pat}, nil }
	for _, tc := range []struct {
		name  string
		pages []PageEvidence
		want  []chartscan.PageStatus
	}{
		{"cover then pages without identifiers",
			[]PageEvidence{{Kind: PageCover, CoverMRN: mrn}, {}, {Kind: PageBlank}, {}},
			[]chartscan.PageStatus{chartscan.StatusSeparator, chartscan.StatusAuto, chartscan.StatusBlank, chartscan.StatusAuto}},
		{"cover then a page of another patient",
			[]PageEvidence{{Kind: PageCover, CoverMRN: mrn}, {Identifiers: ids("", "OKAFOR, Ngozi", "1971-02-03")}},
			[]chartscan.PageStatus{chartscan.StatusSeparator, chartscan.StatusReview}},
		{"cover of a patient not in the EMPI",
			[]PageEvidence{{Kind: PageCover, CoverMRN: "999999998"}, {}},
			nil}, // filled below: never auto
	} {
		lk := lookup
		if tc.want == nil {
			lk = func(Evidence) ([]chartscan.Patient, error) { return nil, nil }
		}
		got, err := FileSegments(tc.pages, DefaultModel(), lk, nil)
		if err != nil {
			t.Fatal(err)
		}
		var st []chartscan.PageStatus
		for _, f := range got {
			st = append(st, f.Status)
		}
		if tc.want == nil {
			if st[1] == chartscan.StatusAuto {
				t.Errorf("%s: page filed %v", tc.name, st)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, st); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestSegmentsIgnoreAnUnsureBirthDate(t *testing.T) {
	page := func(dob string, conf float64) PageEvidence {
		return PageEvidence{Identifiers: []chartscan.Identifier{
			{Kind: chartscan.KindName, Value: "MAY, Harry", Confidence: 0.9},
			{Kind: chartscan.KindDOB, Value: dob, Confidence: conf},
		}}
	}
	for _, tc := range []struct {
		name   string
		second PageEvidence
		segs   int
		unc    int
	}{
		{"another birth date read with low confidence", page("1987-10-28", 0.45), 1, 0},
		{"another birth date read clearly", page("1987-10-28", 0.9), 2, 2},
	} {
		got := segments([]PageEvidence{page("1988-11-25", 0.95), tc.second}, "luhn")
		unc := 0
		for _, s := range got {
			unc += len(s.Uncertain)
		}
		if len(got) != tc.segs || unc != tc.unc {
			t.Errorf("%s: %d segments, %d uncertain pages; want %d, %d", tc.name, len(got), unc, tc.segs, tc.unc)
		}
	}
}

func TestSegmentsMisreadMRNAloneStartsANewPatient(t *testing.T) {
	const valid = "208031716"
	first := PageEvidence{Identifiers: ids(valid, "MILLS, Heidi", "1980-12-06")}
	for _, tc := range []struct {
		name string
		page PageEvidence
		segs int
	}{
		// Another patient's page whose only identifier is a misread (Luhn-failing) MRN
		// must not join the segment before it: that was a misfile of three pages.
		{"a misread MRN alone", PageEvidence{Identifiers: ids("482379315", "", "")}, 2},
		// Two misreads of the same MRN with name and birth date agreeing are one patient.
		{"a misread MRN with name and birth date agreeing", PageEvidence{Identifiers: ids("288831716", "MILLS, Heidi", "1980-12-06")}, 1},
	} {
		if CheckDigitValid("luhn", tc.page.Identifiers[0].Value) {
			t.Fatalf("%s: test MRN must fail Luhn", tc.name)
		}
		if got := segments([]PageEvidence{first, tc.page}, "luhn"); len(got) != tc.segs {
			t.Errorf("%s: %d segments, want %d", tc.name, len(got), tc.segs)
		}
	}
}
