package indexer

import (
	"testing"

	"github.com/google/go-cmp/cmp"
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
