package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan"
)

func TestGroupPagesCutsRunsByPatientTypeDateAndPart(t *testing.T) {
	const A, B = "100000001", "100000002"
	pg := func(n int, s chartscan.PageStatus, mrn, typ, dos string) pdPage {
		return pdPage{No: n, Status: s, MRN: mrn, DocType: typ, DOS: dos}
	}
	auto, conf := chartscan.StatusAuto, chartscan.StatusConfirmed
	pages := []pdPage{
		pg(1, chartscan.StatusSeparator, "", "", ""), // a cover sheet
		pg(2, auto, A, "progress_note", "2024-01-02"),
		pg(3, conf, A, "", ""), // names neither: continues
		pg(4, chartscan.StatusBlank, "", "", ""),
		pg(5, auto, A, "progress_note", "2024-01-02"),
		pg(6, auto, A, "lab", "2024-01-02"),       // another type
		pg(7, auto, A, "lab", "2024-01-05"),       // another date
		pg(8, auto, B, "lab", "2024-01-05"),       // another patient
		pg(9, chartscan.StatusFailed, "", "", ""), // breaks nothing
		pg(10, auto, B, "", ""),                   // still B's document
		pg(11, chartscan.StatusUnmatched, "", "", ""),
		pg(12, auto, B, "", ""), // after an unmatched page: a new run
		{No: 13, Status: chartscan.StatusSeparator, Separator: true},
		pg(14, auto, B, "", ""),                   // part 2
		pg(15, chartscan.StatusReview, A, "", ""), // part 2 is pending
		pg(16, auto, B, "", ""),
	}
	got := groupPages(pages, true)
	want := []pdGroup{
		{Part: 1, MRN: A, DocType: "progress_note", DOS: "2024-01-02", Pages: []int{2, 3, 5}},
		{Part: 1, MRN: A, DocType: "lab", DOS: "2024-01-02", Pages: []int{6}},
		{Part: 1, MRN: A, DocType: "lab", DOS: "2024-01-05", Pages: []int{7}},
		{Part: 1, MRN: B, DocType: "lab", DOS: "2024-01-05", Pages: []int{8, 10}},
		{Part: 1, MRN: B, Pages: []int{12}},
		{Part: 2, MRN: B, Pages: []int{14}, Pending: true},
		{Part: 2, MRN: B, Pages: []int{16}, Pending: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	for _, g := range groupPages(pages, false) {
		if !g.Pending {
			t.Errorf("a scan not filed yet has a document that is not pending: %+v", g)
		}
	}
}

// planFor runs one refresh plan over stored versions and new groups; new ids are n1, n2…
func planFor(stored []PatientDocument, groups []pdGroup, now map[int]pageNow, survivor map[string]string) []pdOp {
	n := 0
	return planPatientDocuments(stored, groups, now, survivor, func() string { n++; return fmt.Sprintf("n%d", n) })
}

func TestPlanPatientDocuments(t *testing.T) {
	const A, B, S = "100000001", "100000002", "100000009"
	filed := func(mrn string, pages ...int) map[int]pageNow {
		m := map[int]pageNow{}
		for _, p := range pages {
			m[p] = pageNow{chartscan.StatusAuto, mrn}
		}
		return m
	}
	doc := func(id string, v int, state, mrn string, pages ...int) PatientDocument {
		return PatientDocument{ID: id, Version: v, State: state, MRN: mrn, Part: 1, DocType: "lab", Pages: pages}
	}
	group := func(mrn string, pending bool, pages ...int) pdGroup {
		return pdGroup{Part: 1, MRN: mrn, DocType: "lab", Pages: pages, Pending: pending}
	}
	kinds := func(ops []pdOp) []pdOpKind {
		var k []pdOpKind
		for _, o := range ops {
			k = append(k, o.kind)
		}
		return k
	}

	// Unchanged: nothing to do, whatever the state; a pending one that settles is ready.
	for _, st := range []string{PDReady, PDDelivered, PDAcknowledged, PDRejected} {
		if ops := planFor([]PatientDocument{doc("d", 1, st, A, 1, 2)}, []pdGroup{group(A, false, 1, 2)}, filed(A, 1, 2), nil); len(ops) != 0 {
			t.Errorf("unchanged %s document: %v", st, kinds(ops))
		}
	}
	if ops := planFor([]PatientDocument{doc("d", 1, PDPending, A, 1, 2)}, []pdGroup{group(A, false, 1, 2)}, filed(A, 1, 2), nil); !slices.Equal(kinds(ops), []pdOpKind{opState}) || ops[0].new.State != PDReady {
		t.Errorf("pending document whose part settled: %+v", ops)
	}
	// A delivered document in a part that a page went back to review keeps its state.
	if ops := planFor([]PatientDocument{doc("d", 1, PDDelivered, A, 1, 2)}, []pdGroup{group(A, true, 1, 2)}, filed(A, 1, 2), nil); len(ops) != 0 {
		t.Errorf("delivered document of a pending part: %v", kinds(ops))
	}

	// Changed before it was sent: updated in place, same id and version.
	ops := planFor([]PatientDocument{doc("d", 1, PDReady, A, 1, 2)}, []pdGroup{group(A, false, 1, 2, 3)}, filed(A, 1, 2, 3), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opUpdate}) || ops[0].new.ID != "d" || ops[0].new.Version != 1 || !slices.Equal(ops[0].new.Pages, []int{1, 2, 3}) {
		t.Errorf("ready document with a page added: %+v", ops)
	}

	// Changed after delivery: superseded by version 2, which replaces it; the page taken
	// from it is another patient's new document.
	ops = planFor([]PatientDocument{doc("d", 1, PDDelivered, A, 1, 2, 3)}, []pdGroup{group(A, false, 1, 2), group(B, false, 3)},
		map[int]pageNow{1: {chartscan.StatusAuto, A}, 2: {chartscan.StatusAuto, A}, 3: {chartscan.StatusConfirmed, B}}, nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opSupersede, opCreate}) {
		t.Fatalf("delivered document losing a page to another patient: %v", kinds(ops))
	}
	if n := ops[0].new; n.ID != "d" || n.Version != 2 || n.ReplacesVersion != 1 || n.State != PDReady || !slices.Equal(n.Pages, []int{1, 2}) {
		t.Errorf("the next version: %+v", n)
	}
	if c := ops[0].change; !c.enteredInError || c.reason != "pages no longer filed to the patient" {
		t.Errorf("change: %+v", c)
	}
	if n := ops[1].new; n.ID != "n1" || n.Version != 1 || n.MRN != B || !slices.Equal(n.Pages, []int{3}) {
		t.Errorf("the other patient's document: %+v", n)
	}

	// A rejected document that changes: superseded, the next version replaces nothing.
	ops = planFor([]PatientDocument{doc("d", 1, PDRejected, A, 1)}, []pdGroup{group(A, false, 1, 2)}, filed(A, 1, 2), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opSupersede}) || ops[0].new.ReplacesVersion != 0 || ops[0].new.Version != 2 {
		t.Errorf("rejected document with a page added: %+v", ops)
	}

	// An EMPI merge renames the patient: superseded, not entered in error.
	ops = planFor([]PatientDocument{doc("d", 1, PDAcknowledged, A, 1, 2)}, []pdGroup{group(S, false, 1, 2)}, filed(S, 1, 2), map[string]string{A: S})
	if !slices.Equal(kinds(ops), []pdOpKind{opSupersede}) || ops[0].change.enteredInError || ops[0].change.reason != "patients merged in the EMPI" || ops[0].new.MRN != S {
		t.Errorf("merged patient: %+v", ops)
	}
	// A reviewer files the pages to another patient: entered in error.
	ops = planFor([]PatientDocument{doc("d", 1, PDDelivered, A, 1, 2)}, []pdGroup{group(B, false, 1, 2)}, filed(B, 1, 2), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opSupersede}) || !ops[0].change.enteredInError || ops[0].change.reason != "filed to another patient" {
		t.Errorf("refiled to another patient: %+v", ops)
	}

	// A split by type: the document keeps the first part, the rest is a new one, and the
	// pages moved stay the patient's: out of date, not in error.
	ops = planFor([]PatientDocument{doc("d", 1, PDDelivered, A, 1, 2, 3)},
		[]pdGroup{group(A, false, 1), {Part: 1, MRN: A, DocType: "consent", Pages: []int{2, 3}}}, filed(A, 1, 2, 3), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opSupersede, opCreate}) || ops[0].change.enteredInError ||
		!slices.Equal(ops[0].new.Pages, []int{1}) || !slices.Equal(ops[1].new.Pages, []int{2, 3}) {
		t.Errorf("split by type: %+v", ops)
	}
	if ops[0].change.reason != "pages moved to another of the patient's documents" {
		t.Errorf("split by type: reason %q", ops[0].change.reason)
	}

	// Every page gone: an unsent document is removed, a delivered one withdrawn.
	review := map[int]pageNow{1: {chartscan.StatusReview, A}}
	if ops := planFor([]PatientDocument{doc("d", 1, PDReady, A, 1)}, nil, review, nil); !slices.Equal(kinds(ops), []pdOpKind{opRemove}) || ops[0].pred != nil {
		t.Errorf("ready document with no page left: %+v", ops)
	}
	if ops := planFor([]PatientDocument{doc("d", 1, PDDelivered, A, 1)}, nil, review, nil); !slices.Equal(kinds(ops), []pdOpKind{opWithdraw}) || !ops[0].change.enteredInError {
		t.Errorf("delivered document with no page left: %+v", ops)
	}
	// An unsent replacement with no page left: removed, the version it replaced withdrawn.
	v1 := doc("d", 1, PDSuperseded, A, 1)
	v2 := doc("d", 2, PDReady, A, 1, 2)
	v2.ReplacesVersion = 1
	ops = planFor([]PatientDocument{v1, v2}, nil, review, nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opRemove}) || ops[0].pred == nil || ops[0].pred.Version != 1 || !ops[0].change.enteredInError {
		t.Errorf("unsent replacement with no page left: %+v", ops)
	}
	// An unsent replacement back to version 1's pages: version 1 stands again.
	ops = planFor([]PatientDocument{v1, v2}, []pdGroup{group(A, false, 1)}, filed(A, 1), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opRestore}) || ops[0].pred.Version != 1 || ops[0].old.Version != 2 {
		t.Errorf("unsent replacement back to what it replaces: %+v", ops)
	}
	// An unsent replacement that changes again: updated, its reason against version 1.
	ops = planFor([]PatientDocument{v1, v2}, []pdGroup{group(A, false, 1, 2, 3)}, filed(A, 1, 2, 3), nil)
	if !slices.Equal(kinds(ops), []pdOpKind{opUpdate}) || ops[0].pred == nil || ops[0].change.reason != "pages added" || ops[0].change.enteredInError {
		t.Errorf("unsent replacement changed again: %+v", ops)
	}
}

// The patient documents follow every change of a filing, in the transaction that makes
// it: a filing saved, a reviewer's decision, a quality check, an EMPI merge.
func TestPatientDocumentsFollowFilings(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	doc := splitDocument(t, db, chartscan.Batch{}, 4)
	for n, typ := range map[int]string{1: "progress_note", 2: "progress_note", 3: "lab", 4: "lab"} {
		if err := db.SaveIdentifiers(ctx, doc.ID, n, []chartscan.Identifier{{Kind: chartscan.KindDocType, Value: typ}}); err != nil {
			t.Fatal(err)
		}
	}
	auto := func(mrn string) chartscan.Filing {
		return chartscan.Filing{Status: chartscan.StatusAuto, MRN: mrn, Score: 30}
	}
	live := func() []PatientDocument {
		t.Helper()
		all, err := db.PatientDocuments(ctx, doc.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		var out []PatientDocument
		for _, d := range all {
			if d.State != PDSuperseded {
				out = append(out, d)
			}
		}
		return out
	}
	summary := func(ds []PatientDocument) string {
		s := ""
		for _, d := range ds {
			s += fmt.Sprintf("[%s %s %v %s v%d]", d.MRN, d.DocType, d.Pages, d.State, d.Version)
		}
		return s
	}
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000001"), 2: auto("100000001"),
		3: auto("100000001"), 4: {Status: chartscan.StatusReview, MRN: "100000002", Score: 12}}); err != nil {
		t.Fatal(err)
	}
	got := live()
	if want := "[100000001 progress_note [1 2] pending v1][100000001 lab [3] pending v1]"; summary(got) != want {
		t.Fatalf("after filing: %s, want %s", summary(got), want)
	}
	note, lab := got[0], got[1]
	rep, err := db.BatchReport(ctx, doc.BatchID)
	if err != nil || rep.Pages.Scanned != 4 || rep.Pages.Filed != 3 || rep.Pages.Review != 1 || rep.PatientDocuments.Pending != 2 || rep.Complete {
		t.Errorf("report with a page in review: %+v, %v", rep, err)
	}

	// Filing the same again changes nothing: the same ids and versions.
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000001"), 2: auto("100000001"),
		3: auto("100000001"), 4: {Status: chartscan.StatusReview, MRN: "100000002", Score: 12}}); err != nil {
		t.Fatal(err)
	}
	if again := live(); summary(again) != summary(got) || again[0].ID != note.ID || again[1].ID != lab.ID {
		t.Errorf("filing again changed the documents: %s", summary(again))
	}

	// The reviewer files page 4 to the patient: it joins the lab document, both ready.
	if _, err := db.Decide(ctx, Decision{PageKey: PageKey{doc.ID, 4}, Action: ActionConfirm, MRN: "100000001", Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	got = live()
	if want := "[100000001 progress_note [1 2] ready v1][100000001 lab [3 4] ready v1]"; summary(got) != want {
		t.Fatalf("after the decision: %s, want %s", summary(got), want)
	}
	if got[1].ID != lab.ID {
		t.Errorf("the lab document got a new id when a page joined it before delivery")
	}
	rep, err = db.BatchReport(ctx, doc.BatchID)
	if err != nil || rep.Pages.Filed != 4 || rep.Pages.Confirmed != 1 || rep.PatientDocuments.Ready != 2 || !rep.Complete {
		t.Errorf("report after the decision: %+v, %v", rep, err)
	}

	// Delivered; then a quality check finds page 2 filed to the wrong patient: the note
	// is superseded by version 2 without it, entered in error, and is pending again.
	for _, d := range got {
		if err := db.SetPatientDocumentState(ctx, d.ID, d.Version, PDDelivered, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetPatientDocumentState(ctx, note.ID, 1, PDReady, ""); chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("delivered → ready: %v, want a conflict", err)
	}
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{2: {Status: chartscan.StatusAuto, MRN: "100000001", Score: 30, QACheck: true}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckQA(ctx, QACheck{PageKey: PageKey{doc.ID, 2}, MRN: "100000001", Outcome: QAWrong, Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	got = live()
	if want := "[100000001 progress_note [1] pending v2][100000001 lab [3 4] delivered v1]"; summary(got) != want {
		t.Fatalf("after the quality check: %s, want %s", summary(got), want)
	}
	if got[0].ID != note.ID || got[0].ReplacesVersion != 1 {
		t.Errorf("version 2: %+v", got[0])
	}
	old, err := db.PatientDocument(ctx, note.ID, 1)
	if err != nil || old.State != PDSuperseded || !old.EnteredInError || old.Withdraw || old.SupersededAt == nil {
		t.Errorf("version 1 after the check: %+v, %v", old, err)
	}

	// The reviewer files the page to the patient again: version 2 was never sent, and
	// version 1 is what the EHR holds again.
	pd, err := db.PageDetail(ctx, doc.ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Decide(ctx, Decision{PageKey: PageKey{doc.ID, 2}, Version: pd.Version, Action: ActionConfirm, MRN: "100000001", Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	got = live()
	if want := "[100000001 progress_note [1 2] delivered v1][100000001 lab [3 4] delivered v1]"; summary(got) != want {
		t.Fatalf("after the page came back: %s, want %s", summary(got), want)
	}
	if _, err := db.PatientDocument(ctx, note.ID, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("the unsent version 2 is still there: %v", err)
	}

	// An EMPI merge of the patient: every document moves to the survivor, each
	// superseded by a version 2 that replaces it, not in error.
	if _, err := db.MergePatients(ctx, "100000004", "100000001", "test"); err != nil {
		t.Fatal(err)
	}
	got = live()
	if want := "[100000004 progress_note [1 2] ready v2][100000004 lab [3 4] ready v2]"; summary(got) != want {
		t.Fatalf("after the merge: %s, want %s", summary(got), want)
	}
	for _, id := range []string{note.ID, lab.ID} {
		if old, err := db.PatientDocument(ctx, id, 1); err != nil || old.State != PDSuperseded || old.EnteredInError || old.SupersededReason != "patients merged in the EMPI" {
			t.Errorf("version 1 after the merge: %+v, %v", old, err)
		}
	}
	rep, err = db.BatchReport(ctx, doc.BatchID)
	if err != nil || rep.Pages.Filed != 4 || rep.PatientDocuments.Superseded != 2 || rep.PatientDocuments.Total != 2 || rep.PatientDocuments.Ready != 2 {
		t.Errorf("report after the merge: %+v, %v", rep, err)
	}
	// Refreshing by hand finds nothing to change.
	if err := db.RefreshBatchPatientDocuments(ctx, doc.BatchID); err != nil {
		t.Fatal(err)
	}
	if again := live(); summary(again) != summary(got) {
		t.Errorf("a refresh changed the documents: %s", summary(again))
	}
}

// The report's sums are checked: a count that does not add up is an error.
func TestBatchReportCheck(t *testing.T) {
	var r BatchReport
	r.Pages.Scanned, r.Pages.Auto, r.Pages.Filed, r.Pages.Review = 3, 2, 2, 1
	r.PagesInDocuments = map[string]int{PDReady: 2}
	r.DistinctPagesInDocuments, r.FiledPagesInDocuments = 2, 2
	r.PatientDocuments.Total, r.PatientDocuments.Ready = 1, 1
	if err := r.Check(); err != nil {
		t.Fatalf("a report that adds up: %v", err)
	}
	for name, breakIt := range map[string]func(*BatchReport){
		"a page in no status":           func(r *BatchReport) { r.Pages.Scanned++ },
		"an unknown status":             func(r *BatchReport) { r.Pages.Other, r.Pages.Scanned = 1, 4 },
		"filed not auto + confirmed":    func(r *BatchReport) { r.Pages.Confirmed = 1 },
		"a filed page in no document":   func(r *BatchReport) { r.PagesInDocuments[PDReady] = 1 },
		"a page in two documents":       func(r *BatchReport) { r.PagesInDocuments[PDPending] = 1 },
		"an unfiled page in a document": func(r *BatchReport) { r.FiledPagesInDocuments = 1 },
		"documents by state":            func(r *BatchReport) { r.PatientDocuments.Total = 2 },
	} {
		b := r
		b.PagesInDocuments = map[string]int{PDReady: 2}
		breakIt(&b)
		if err := b.Check(); err == nil {
			t.Errorf("%s: the check passed", name)
		}
	}
}
