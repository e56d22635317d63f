package indexer

import (
	"errors"
	"slices"
	"testing"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpApprox = cmpopts.EquateApprox(0, 1e-9)

func content(ids []chartscan.Identifier) PageEvidence { return PageEvidence{Identifiers: ids} }

// num adds to a page's identifiers the page number "Page k of n" (n 0: "Page k").
func num(k, n int, ids []chartscan.Identifier) []chartscan.Identifier {
	return append(slices.Clone(ids), chartscan.Identifier{Kind: chartscan.KindPageNumber, Value: PageNumber{k, n}.String(), Confidence: 0.9})
}

// typed adds a document type to a page's identifiers.
func typed(docType string, ids []chartscan.Identifier) []chartscan.Identifier {
	return append(slices.Clone(ids), chartscan.Identifier{Kind: chartscan.KindDocType, Value: docType, Confidence: 0.9})
}

// continued adds a "(continued)" heading to a page's identifiers.
func continued(ids []chartscan.Identifier) []chartscan.Identifier {
	return append(slices.Clone(ids), chartscan.Identifier{Kind: chartscan.KindContinued, Value: "continued", Confidence: 0.9})
}

// unread is a page whose labels of the kinds listed were found without readable values.
func unread(kinds string) []chartscan.Identifier {
	return []chartscan.Identifier{{Kind: chartscan.KindUnread, Value: kinds}}
}

func TestSegments(t *testing.T) {
	jane := ids("00123456", "DOE, Jane", "1962-03-14")
	jose := ids("555", "NUNEZ, Jose", "1970-01-01")
	mary := ids("777", "DOE, Mary", "1962-03-14") // Jane's twin
	type seg struct {
		Pages     []int
		Cover     bool
		Uncertain []int
		MRN       string
	}
	tests := []struct {
		name  string
		pages []PageEvidence
		want  []seg
	}{
		{"continuation pages", []PageEvidence{content(jane), content(nil), content(docTypeOnly)},
			[]seg{{Pages: []int{0, 1, 2}, MRN: "00123456"}}},
		{"leading page without identifiers", []PageEvidence{content(nil), content(jane)},
			[]seg{{Pages: []int{0, 1}, MRN: "00123456"}}},
		{"the same patient again, name and dob only", []PageEvidence{content(jane), content(ids("", "DOE, Jane", "1962-03-14"))},
			[]seg{{Pages: []int{0, 1}, MRN: "00123456"}}},
		{"mrn one confusion away is the same patient", []PageEvidence{content(jane), content(ids("0O123456", "", ""))},
			[]seg{{Pages: []int{0, 1}, MRN: "00123456"}}},
		{"clean boundary", []PageEvidence{content(jane), content(nil), content(jose), content(nil)},
			[]seg{{Pages: []int{0, 1}, MRN: "00123456"}, {Pages: []int{2, 3}, MRN: "555"}}},
		{"conflicting page: another mrn only", []PageEvidence{content(jane), content(ids("999999", "", ""))},
			[]seg{{Pages: []int{0}, MRN: "00123456"}, {Pages: []int{1}, MRN: "999999"}}},
		{"uncertain boundary: twins one after the other", []PageEvidence{content(jane), content(nil), content(mary), content(nil), content(jose)},
			[]seg{{Pages: []int{0, 1}, Uncertain: []int{1}, MRN: "00123456"}, {Pages: []int{2, 3}, Uncertain: []int{2, 3}, MRN: "777"},
				{Pages: []int{4}, MRN: "555"}}},
		{"uncertain boundary: same name and dob, other mrn", []PageEvidence{content(jane), content(ids("999999", "DOE, Jane", "1962-03-14"))},
			[]seg{{Pages: []int{0}, Uncertain: []int{0}, MRN: "00123456"}, {Pages: []int{1}, Uncertain: []int{1}, MRN: "999999"}}},
		{"cover sheet", []PageEvidence{{Kind: PageCover, CoverMRN: "00-123-456"}, content(ids("", "DOE, Jane", "")), content(nil),
			{Kind: PageCover, CoverMRN: "555"}, content(nil)},
			[]seg{{Pages: []int{0, 1, 2}, Cover: true, MRN: "00123456"}, {Pages: []int{3, 4}, Cover: true, MRN: "555"}}},
		{"content conflicting with its cover sheet", []PageEvidence{{Kind: PageCover, CoverMRN: "555"}, content(jane)},
			[]seg{{Pages: []int{0}, Cover: true, Uncertain: []int{0}, MRN: "555"}, {Pages: []int{1}, Uncertain: []int{1}, MRN: "00123456"}}},
		{"separator, blank and failed pages", []PageEvidence{content(jane), {Kind: PageBlank}, content(nil), {Kind: PageFailed},
			{Kind: PageSeparator}, content(nil), content(jose)},
			[]seg{{Pages: []int{0, 2}, MRN: "00123456"}, {Pages: []int{5, 6}, MRN: "555"}}},
		{"a reviewer's split starts a segment", []PageEvidence{content(jane), content(nil), {Identifiers: jane, SplitBefore: true}, content(nil)},
			[]seg{{Pages: []int{0, 1}, MRN: "00123456"}, {Pages: []int{2, 3}, MRN: "00123456"}}},
		{"no pages", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []seg
			for _, s := range Segments(tt.pages) {
				got = append(got, seg{s.Pages, s.Cover, s.Uncertain, s.Evidence.MRN.Value})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Segments mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSegmentsMergeEvidence(t *testing.T) {
	p1 := ids("00123456", "DOE, Jane", "")
	p2 := ids("0O123456", "", "1962-03-14") // one misread, less sure
	p2[0].Confidence = 0.3
	p3 := ids("00123456", "", "")
	segs := Segments([]PageEvidence{content(p1), content(p2), content(p3)})
	if len(segs) != 1 {
		t.Fatalf("Segments = %d segments, want 1", len(segs))
	}
	e := segs[0].Evidence
	want := Evidence{MRN: Reading{"00123456", 0.9 * 1.8 / 2.1}, Family: Reading{"doe", 0.9}, Given: Reading{"jane", 0.9}, DOB: Reading{"1962-03-14", 0.9}}
	if diff := cmp.Diff(want, e, cmpApprox); diff != "" {
		t.Errorf("merged evidence mismatch (-want +got):\n%s", diff)
	}
}

// empi is an in-memory EMPI whose lookup runs the blocking queries FileSegments expects.
type empi []chartscan.Patient

func (db empi) lookup(e Evidence) ([]chartscan.Patient, error) {
	var out []chartscan.Patient
	keys := append([]string{e.MRN.Value}, MRNVariants(e.MRN.Value, "none")...)
	for _, p := range db {
		r := recordOf(p)
		if e.MRN.Value != "" && slices.Contains(keys, r.mrn) ||
			e.DOB.Value != "" && e.DOB.Value == r.dob ||
			e.Family.Value != "" && NYSIIS(e.Family.Value) == NYSIIS(r.family) {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestFileSegments(t *testing.T) {
	doelJane := chartscan.Patient{MRN: "10000003", Family: "Doel", Given: "Jane", BirthDate: "1971-02-03", Sex: "female"}
	db := empi{pJane, pJose, twinJane, twinMary, doelJane}
	m := DefaultModel()
	m.CheckDigit = "none"
	auto := func(mrn, reason string) brief { return brief{chartscan.StatusAuto, mrn, reason} }
	review := func(mrn, reason string) brief { return brief{chartscan.StatusReview, mrn, reason} }
	janePage := ids("00123456", "DOE, Jane", "1962-03-14")
	tests := []struct {
		name  string
		pages []PageEvidence
		want  []brief
	}{
		{"two patients with continuation pages", []PageEvidence{
			content(nil), content(num(1, 2, janePage)), content(num(2, 2, docTypeOnly)), content(num(1, 0, ids("555", "NUNEZ, Jose", ""))), content(num(2, 0, nil))},
			[]brief{{chartscan.StatusUnmatched, "", reasonSegmentNoIDs}, auto("00123456", ""), auto("00123456", reasonSegContinue),
				auto("555", ""), auto("555", reasonSegContinue)}},
		{"a page before the first identifying page of its document", []PageEvidence{content(nil), content(num(2, 0, janePage))},
			[]brief{review("00123456", reasonLeadingNoIDs), auto("00123456", "")}},
		{"pages without identifiers or a page number that follows", []PageEvidence{
			content(num(1, 3, janePage)), content(nil), content(num(3, 3, nil)), content(num(2, 2, nil)), content(num(1, 1, nil))},
			[]brief{auto("00123456", ""), review("00123456", reasonUnanchored), review("00123456", reasonUnanchored),
				review("00123456", reasonUnanchored), {chartscan.StatusUnmatched, "", reasonSegmentNoIDs}}},
		{"a numbered run tied to an unanchored page is not anchored", []PageEvidence{
			content(num(1, 3, janePage)), content(num(3, 3, nil)), content(num(4, 0, nil))},
			[]brief{auto("00123456", ""), review("00123456", reasonUnanchored), review("00123456", reasonUnanchored)}},
		{"identifiers printed but unread are never a continuation", []PageEvidence{
			content(num(1, 2, janePage)), content(num(2, 2, unread("mrn,name,dob")))},
			[]brief{auto("00123456", ""), review("00123456", reasonUnread)}},
		{"a heading that says continued ties a page of the same type", []PageEvidence{
			content(typed("lab", janePage)), content(typed("lab", continued(nil))), content(typed("radiology", continued(nil))),
			content(typed("radiology", continued(num(1, 2, nil))))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), review("00123456", reasonUnanchored),
				{chartscan.StatusUnmatched, "", reasonSegmentNoIDs}}},
		{"page 2 after an identifying first page whose number was not read", []PageEvidence{
			content(typed("lab", janePage)), content(typed("lab", num(2, 2, nil))), content(typed("lab", janePage)), content(typed("radiology", num(2, 2, nil)))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), auto("00123456", ""), review("00123456", reasonUnanchored)}},
		{"a page number read with little confidence ties nothing", []PageEvidence{
			content(num(1, 2, janePage)), content([]chartscan.Identifier{{Kind: chartscan.KindPageNumber, Value: "2/2", Confidence: 0.5}})},
			[]brief{auto("00123456", ""), review("00123456", reasonUnanchored)}},
		{"a page that could not be read breaks the chain of continuation pages", []PageEvidence{
			// What the failed page showed is unknown — perhaps the next patient's first page —
			// so a page that would have followed the page before it follows nothing. A page
			// with identifiers of its own still joins by them.
			content(typed("lab", num(1, 3, janePage))), {Kind: PageFailed}, content(typed("lab", num(2, 3, nil))),
			content(typed("lab", continued(nil))), {Kind: PageFailed}, content(num(3, 0, janePage)), content(num(4, 0, nil))},
			[]brief{auto("00123456", ""), {chartscan.StatusFailed, "", reasonFailedPage}, review("00123456", reasonUnanchored),
				review("00123456", reasonUnanchored), {chartscan.StatusFailed, "", reasonFailedPage}, auto("00123456", ""),
				auto("00123456", reasonSegContinue)}},
		{"a page sharing no identifier with the segment is decided on its own", []PageEvidence{
			// Held-out seed 1212 of make bench-match: a page printing another patient's name
			// (unread) and birth date followed pages with MRN and name only; it joined them
			// and their patient's filing carried it. Now only its own birth date speaks.
			content(typed("lab", num(1, 0, ids("00123456", "DOE, Jane", "")))), content(typed("lab", num(2, 0, nil))),
			content(ids("", "", "1970-01-01"))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), review("555", reasonBelowAuto)}},
		{"a page sharing no identifier with the segment, its page number following", []PageEvidence{
			content(typed("lab", num(1, 3, ids("00123456", "DOE, Jane", "")))), content(typed("lab", num(2, 3, nil))),
			content(typed("lab", num(3, 3, ids("", "", "1962-03-14"))))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), auto("00123456", "")}},
		{"page 1 of 1 after a filed page starts a new document", []PageEvidence{
			content(num(1, 1, janePage)), content(num(1, 1, ids("555", "NUNEZ, Jose", "1970-01-01"))), content(num(1, 1, unread("mrn")))},
			[]brief{auto("00123456", ""), auto("555", ""), review("", reasonUnread)}},
		{"twins one after the other", []PageEvidence{
			// Each twin's page names its twin by its own MRN and given name, which the twin
			// rule checks against the other: each is filed; the page between goes to review.
			content(ids("10000001", "DOE, Jane", "1990-05-01")), content(nil), content(ids("10000002", "DOE, Mary", "1990-05-01"))},
			[]brief{auto("10000001", ""), review("10000001", reasonBoundary), auto("10000002", "")}},
		{"twins one after the other, the second without an mrn", []PageEvidence{
			content(ids("10000001", "DOE, Jane", "1990-05-01")), content(nil), content(ids("", "DOE, Mary", "1990-05-01"))},
			[]brief{auto("10000001", ""), review("10000001", reasonBoundary), review("10000002", reasonBoundary)}},
		{"two patients whose names look alike, each page with its own mrn", []PageEvidence{
			// No page number says where the second document starts, so the boundary is
			// uncertain (the names agree, MRN and birth date do not).
			content(typed("lab", ids("10000001", "DOE, Jane", "1990-05-01"))), content(typed("lab", continued(nil))),
			content(typed("lab", ids("10000003", "DOEL, Jane", "1971-02-03"))), content(typed("lab", continued(nil)))},
			[]brief{auto("10000001", ""), auto("10000001", reasonSegContinue), auto("10000003", ""), auto("10000003", reasonSegContinue)}},
		{"one patient across an uncertain boundary: two misreads of one mrn", []PageEvidence{
			content(num(1, 0, ids("O0123456", "DOE, Jane", "1962-03-14"))), content(num(2, 0, nil)), content(num(3, 0, ids("00I23456", "DOE, Jane", "1962-03-14"))), content(num(4, 0, nil))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), auto("00123456", ""), auto("00123456", reasonSegContinue)}},
		{"uncertain boundary: a weak page before a strong one", []PageEvidence{
			content(ids("", "DOE, Jane", "1972-08-14")), content(num(2, 0, janePage)), content(num(3, 0, nil))},
			[]brief{review("00123456", reasonBoundary), auto("00123456", ""), auto("00123456", reasonSegContinue)}},
		{"uncertain boundary: a strong page before a weak one", []PageEvidence{
			content(num(1, 0, janePage)), content(num(2, 0, nil)), content(num(3, 0, ids("", "DOE, Jane", "1972-08-14"))), content(num(4, 0, nil))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), review("00123456", reasonBoundary), review("00123456", reasonBoundary)}},
		{"uncertain boundary: the page at it weak, strong evidence only later in its segment", []PageEvidence{
			content(ids("", "DOE, Jane", "1980-01-01")), content(ids("", "DOE, J", "1962-03-15")), content(nil), content(ids("00123456", "DOE, Jane", ""))},
			[]brief{review("00123456", reasonBoundary), review("00123456", reasonBoundary), review("00123456", reasonBoundary), auto("00123456", "")}},
		{"an MRN alone after pages with name and birth date only is its own segment", []PageEvidence{
			content(ids("", "DOE, J", "1962-03-15")), content(nil), content(ids("00123456", "", ""))},
			[]brief{review("00123456", reasonBelowAuto), review("00123456", reasonUnanchored), review("00123456", reasonBelowAuto)}},
		{"a reviewer's split before pages without identifiers", []PageEvidence{
			content(num(1, 2, janePage)), content(num(2, 2, nil)), {SplitBefore: true}, content(nil), content(ids("555", "NUNEZ, Jose", ""))},
			[]brief{auto("00123456", ""), auto("00123456", reasonSegContinue), review("555", reasonLeadingNoIDs), review("555", reasonLeadingNoIDs), auto("555", "")}},
		{"a reviewer's split with no identifiers after it", []PageEvidence{content(janePage), {SplitBefore: true, Identifiers: num(1, 2, nil)}, content(num(2, 2, nil))},
			[]brief{auto("00123456", ""), review("", reasonSplitNoIDs), review("", reasonSplitNoIDs)}},
		{"a page a reviewer filed carries the pages after it", []PageEvidence{
			{Kind: PageConfirmed, CoverMRN: "00123456", Identifiers: num(1, 3, ids("", "DOE, J", ""))}, content(num(2, 3, nil)), content(num(3, 3, docTypeOnly)),
			content(ids("555", "NUNEZ, Jose", "")), content(nil)},
			[]brief{{chartscan.StatusConfirmed, "00123456", ""}, auto("00123456", reasonSegContinue), auto("00123456", reasonSegContinue),
				auto("555", ""), review("555", reasonUnanchored)}},
		{"twin without mrn", []PageEvidence{content(ids("", "DOE, Jane", "1990-05-01"))},
			[]brief{review("10000001", reasonTwins)}},
		{"cover sheet, content without mrn", []PageEvidence{
			{Kind: PageCover, CoverMRN: "555"}, content(ids("", "NUNEZ, Jose", "1970-01-01")), {Kind: PageBlank}, content(nil)},
			[]brief{{chartscan.StatusSeparator, "", reasonCover}, auto("555", ""), {chartscan.StatusBlank, "", ""}, auto("555", reasonSegContinue)}},
		{"cover sheet naming nobody", []PageEvidence{{Kind: PageCover, CoverMRN: "424242"}, content(nil)},
			[]brief{{chartscan.StatusSeparator, "", reasonCover}, {chartscan.StatusUnmatched, "", reasonSegContinue}}},
		{"no identifiers anywhere", []PageEvidence{content(docTypeOnly), {Kind: PageFailed}},
			[]brief{{chartscan.StatusUnmatched, "", reasonSegmentNoIDs}, {chartscan.StatusFailed, "", reasonFailedPage}}},
		{"patient not in the empi", []PageEvidence{content(ids("31337", "ZED, Zora", "2001-02-03"))},
			[]brief{{chartscan.StatusUnmatched, "", reasonNoCandidates}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := FileSegments(tt.pages, m, db.lookup, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, briefs(fs)); diff != "" {
				t.Errorf("FileSegments mismatch (-want +got):\n%s", diff)
			}
			for i, f := range fs {
				for _, c := range f.Candidates {
					if len(c.Evidence) == 0 {
						t.Errorf("page %d: candidate %s without evidence", i, c.MRN)
					}
				}
			}
		})
	}
}

func TestFileSegmentsLookupError(t *testing.T) {
	broken := errors.New("database down")
	_, err := FileSegments([]PageEvidence{content(ids("1", "", ""))}, DefaultModel(),
		func(Evidence) ([]chartscan.Patient, error) { return nil, broken }, nil)
	if !errors.Is(err, broken) {
		t.Errorf("FileSegments error = %v, want the lookup's", err)
	}
}
