package indexer

import (
	"fmt"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

// ids builds a page's identifiers; empty values are left out. nameValue is "FAMILY, Given".
func ids(mrnValue, nameValue, dobValue string) []chartscan.Identifier {
	var out []chartscan.Identifier
	for _, id := range []chartscan.Identifier{
		{Kind: chartscan.KindMRN, Value: mrnValue, Confidence: 0.9},
		{Kind: chartscan.KindName, Value: nameValue, Confidence: 0.9},
		{Kind: chartscan.KindDOB, Value: dobValue, Confidence: 0.9},
	} {
		if id.Value != "" {
			out = append(out, id)
		}
	}
	return out
}

// docTypeOnly is a page with identifiers that filing does not match on.
var docTypeOnly = []chartscan.Identifier{{Kind: chartscan.KindDocType, Value: chartscan.DocTypeProgressNote, Confidence: 0.9}}

var (
	pJane  = chartscan.Patient{MRN: "00123456", Family: "Doe", Given: "Jane Marie", BirthDate: "1962-03-14", Sex: "female"}
	pJose  = chartscan.Patient{MRN: "555", Family: "Núñez", Given: "José", BirthDate: "1970-01-01", Sex: "male"}
	pOther = chartscan.Patient{MRN: "777", Family: "Doe", Given: "Jane", BirthDate: "1962-03-14", Sex: "female"}
)

// brief is the part of a Filing most rules are about.
type brief struct {
	Status chartscan.PageStatus
	MRN    string
	Reason string
}

func briefs(fs []chartscan.Filing) []brief {
	out := make([]brief, 0, len(fs))
	for _, f := range fs {
		out = append(out, brief{f.Status, f.MRN, f.Reason})
	}
	return out
}

func TestFileDocument(t *testing.T) {
	auto := func(mrn string) brief { return brief{chartscan.StatusAuto, mrn, ""} }
	review := func(mrn, reason string) brief { return brief{chartscan.StatusReview, mrn, reason} }
	dupJane := pJane
	dupJane.Given = "Jane"
	tests := []struct {
		name  string
		pages []PageEvidence
		want  []brief
	}{
		{
			name:  "mrn and name agree",
			pages: []PageEvidence{{Identifiers: ids("00-123-456", "DOE, Jane", ""), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{auto("00123456")},
		},
		{
			name:  "mrn and dob agree",
			pages: []PageEvidence{{Identifiers: ids("00123456", "", "1962-03-14"), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{auto("00123456")},
		},
		{
			name:  "name read the other way round",
			pages: []PageEvidence{{Identifiers: ids("00123456", "JANE, Doe", ""), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{auto("00123456")},
		},
		{
			name:  "diacritics and case",
			pages: []PageEvidence{{Identifiers: ids("555", "NUNEZ, jose", ""), Candidates: []chartscan.Patient{pJose}}},
			want:  []brief{auto("555")},
		},
		{
			name:  "mrn agrees, name agrees, dob disagrees",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, Jane", "1962-03-15"), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonDisagree)},
		},
		{
			name:  "mrn agrees, name and dob disagree",
			pages: []PageEvidence{{Identifiers: ids("00123456", "ROE, Richard", "1980-01-01"), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonDisagree)},
		},
		{
			name:  "mrn agrees, same family but other given name, no dob",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, John", ""), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonDisagree)},
		},
		{
			name:  "mrn alone",
			pages: []PageEvidence{{Identifiers: ids("00123456", "", ""), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonUnconfirmed)},
		},
		{
			name:  "name and dob but no mrn",
			pages: []PageEvidence{{Identifiers: ids("", "DOE, Jane", "1962-03-14"), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonNoMRN)},
		},
		{
			name:  "mrn matches no candidate",
			pages: []PageEvidence{{Identifiers: ids("999999", "DOE, Jane", "1962-03-14"), Candidates: []chartscan.Patient{pJane}}},
			want:  []brief{review("00123456", reasonMRNNotFound)},
		},
		{
			name:  "identifiers but no candidates",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, Jane", ""), Candidates: nil}},
			want:  []brief{{chartscan.StatusUnmatched, "", reasonNoCandidates}},
		},
		{
			name: "two records qualify",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, Jane", "1962-03-14"),
				Candidates: []chartscan.Patient{pJane, dupJane}}},
			want: []brief{review("00123456", reasonDuplicates)},
		},
		{
			name:  "the same record listed twice is one candidate",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, Jane", ""), Candidates: []chartscan.Patient{pJane, pJane}}},
			want:  []brief{auto("00123456")},
		},
		{
			name: "another record fits the name and dob better",
			pages: []PageEvidence{{Identifiers: ids("00123456", "DOE, Jane", "1962-03-14"),
				Candidates: []chartscan.Patient{{MRN: "00123456", Family: "Doe", Given: "Jane"}, pOther}}},
			want: []brief{review("00123456", reasonOtherMatch)},
		},
		{
			name: "two mrns on the page",
			pages: []PageEvidence{{Identifiers: append(ids("00123456", "DOE, Jane", ""), chartscan.Identifier{Kind: chartscan.KindMRN, Value: "777"}),
				Candidates: []chartscan.Patient{pJane, pOther}}},
			want: []brief{review("00123456", reasonSeveralMRNs)},
		},
		{
			name: "continuation of an auto page",
			pages: []PageEvidence{
				{Identifiers: ids("00123456", "DOE, Jane", ""), Candidates: []chartscan.Patient{pJane}},
				{Identifiers: docTypeOnly, Candidates: nil},
				{Identifiers: nil, Candidates: nil},
			},
			want: []brief{auto("00123456"),
				{chartscan.StatusAuto, "00123456", reasonContinuation},
				{chartscan.StatusAuto, "00123456", reasonContinuation}},
		},
		{
			name: "continuation of a review page",
			pages: []PageEvidence{
				{Identifiers: ids("00123456", "", ""), Candidates: []chartscan.Patient{pJane}},
				{Identifiers: nil, Candidates: nil},
			},
			want: []brief{review("00123456", reasonUnconfirmed), review("00123456", reasonContinuation)},
		},
		{
			name: "continuation of an unmatched page",
			pages: []PageEvidence{
				{Identifiers: ids("00123456", "", ""), Candidates: nil},
				{Identifiers: nil, Candidates: nil},
			},
			want: []brief{{chartscan.StatusUnmatched, "", reasonNoCandidates}, {chartscan.StatusUnmatched, "", reasonContinuation}},
		},
		{
			name: "first pages without identifiers",
			pages: []PageEvidence{
				{Identifiers: nil, Candidates: nil},
				{Identifiers: docTypeOnly, Candidates: nil},
				{Identifiers: ids("00123456", "DOE, Jane", ""), Candidates: []chartscan.Patient{pJane}},
				{Identifiers: nil, Candidates: nil},
				{Identifiers: ids("555", "NUNEZ, Jose", ""), Candidates: []chartscan.Patient{pJose}},
			},
			want: []brief{review("00123456", reasonLeading), review("00123456", reasonLeading), auto("00123456"),
				{chartscan.StatusAuto, "00123456", reasonContinuation}, auto("555")},
		},
		{
			name:  "no identifiers in the whole document",
			pages: []PageEvidence{{Identifiers: docTypeOnly, Candidates: nil}, {Identifiers: nil, Candidates: []chartscan.Patient{pJane}}},
			want: []brief{{chartscan.StatusUnmatched, "", reasonNoIdentifiers},
				{chartscan.StatusUnmatched, "", reasonNoIdentifiers}},
		},
		{name: "no pages", pages: nil, want: []brief{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := briefs(FileDocument(tt.pages))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FileDocument mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileDocumentScores(t *testing.T) {
	page := append(ids("00123456", "DOE, Jane", "1962-03-15"), chartscan.Identifier{Kind: chartscan.KindSex, Value: "female"})
	got := FileDocument([]PageEvidence{{Identifiers: page, Candidates: []chartscan.Patient{pOther, pJane}}})
	want := []chartscan.Filing{{
		Status: chartscan.StatusReview,
		MRN:    "00123456",
		Score:  10 + 6 - 5 + 0.5,
		Reason: reasonDisagree,
		Candidates: []chartscan.Candidate{
			{MRN: "00123456", Score: 11.5, Evidence: []chartscan.Evidence{
				{Field: "mrn", Level: "exact", Weight: 10}, {Field: "name", Level: "exact", Weight: 6},
				{Field: "dob", Level: "disagree", Weight: -5}, {Field: "sex", Level: "exact", Weight: 0.5}}},
			{MRN: "777", Score: -6.5, Evidence: []chartscan.Evidence{
				{Field: "mrn", Level: "disagree", Weight: -8}, {Field: "name", Level: "exact", Weight: 6},
				{Field: "dob", Level: "disagree", Weight: -5}, {Field: "sex", Level: "exact", Weight: 0.5}}},
		},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FileDocument mismatch (-want +got):\n%s", diff)
	}
}

func TestFileDocumentRanksAtMostFive(t *testing.T) {
	var patients []chartscan.Patient
	for i := range 8 {
		p := chartscan.Patient{MRN: fmt.Sprintf("M%d", i), Family: "Doe", Given: "Jane", BirthDate: "1962-03-14"}
		if i%2 == 1 {
			p.BirthDate = "1999-01-01"
		}
		patients = append(patients, p)
	}
	got := FileDocument([]PageEvidence{{Identifiers: ids("", "DOE, Jane", "1962-03-14"), Candidates: patients}})[0]
	var mrns []string
	for _, c := range got.Candidates {
		mrns = append(mrns, c.MRN)
	}
	want := []string{"M0", "M2", "M4", "M6", "M1"}
	if diff := cmp.Diff(want, mrns); diff != "" {
		t.Errorf("candidates mismatch (-want +got):\n%s", diff)
	}
	if got.Status != chartscan.StatusReview || got.Score != 13 {
		t.Errorf("filing = %s with score %v, want review with score 13", got.Status, got.Score)
	}
}

// TestFileDocumentFromText runs extraction and filing together on one document.
func TestFileDocumentFromText(t *testing.T) {
	fixNow(t)
	pages := []PageEvidence{
		{Identifiers: Extract(page("PROGRESS NOTE", "Patient: DOE, Jane   MRN: 00-123-456   DOB: 3/14/1962")), Candidates: []chartscan.Patient{pJane}},
		{Identifiers: Extract(page("Assessment and plan continued.")), Candidates: nil},
	}
	got := briefs(FileDocument(pages))
	want := []brief{{chartscan.StatusAuto, "00123456", ""}, {chartscan.StatusAuto, "00123456", reasonContinuation}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FileDocument mismatch (-want +got):\n%s", diff)
	}
}
