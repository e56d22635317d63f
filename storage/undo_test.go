package storage

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
)

func reviewer(t *testing.T, db *DB, name string) User {
	t.Helper()
	u, err := db.CreateUser(context.Background(), name, "reviewer", "not-a-hash")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An undo puts the page back as it was before the decision — status, proposed patient,
// score, reason, candidates — bumps its version (and so the document's filing
// generation), and is audited; only the reviewer who decided may undo, within the
// window, once.
func TestUndoRestoresThePageAndItsCandidates(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	ann, bob := reviewer(t, db, "ann"), reviewer(t, db, "bob")
	k := reviewPage(t, db)
	before, err := db.PageDetail(ctx, k.DocumentID, k.Page)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := db.FilingGeneration(ctx, k.DocumentID)
	out, err := db.Decide(ctx, Decision{PageKey: k, Version: 0, Action: ActionConfirm, MRN: "100000005", ActorID: ann.ID, Actor: "ann"})
	if err != nil || out.ReviewID == 0 {
		t.Fatalf("decide: %+v, %v", out, err)
	}
	rec, err := db.Review(ctx, out.ReviewID)
	if err != nil || rec.Action != ActionConfirm || rec.Patient.Family != "Smyth" || rec.ActorID != ann.ID || !rec.Undoable || !rec.Latest || rec.Age > time.Minute {
		t.Fatalf("review record: %+v, %v", rec, err)
	}
	undo := Undo{PageKey: k, ReviewID: out.ReviewID, ActorID: bob.ID, Actor: "bob", Within: time.Minute}
	if _, err := db.UndoDecision(ctx, undo); chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("another reviewer's undo: %v, want a conflict", err)
	}
	undo.ActorID, undo.Actor, undo.Within = ann.ID, "ann", 0
	if _, err := db.UndoDecision(ctx, undo); chartscan.ErrorCode(err) != chartscan.EConflict || !strings.Contains(chartscan.ErrorMessage(err), "too late") {
		t.Errorf("a late undo: %v, want too late", err)
	}
	undo.Within = time.Minute
	done, err := db.UndoDecision(ctx, undo)
	if err != nil || done.Status != chartscan.StatusReview || done.Version != 2 || done.Action != ActionConfirm {
		t.Fatalf("undo: %+v, %v", done, err)
	}
	after, err := db.PageDetail(ctx, k.DocumentID, k.Page)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != before.Status || after.MRN != before.MRN || after.Score != before.Score || after.Reason != before.Reason || after.Version != 2 {
		t.Errorf("after the undo: %s %s %v %q v%d; before: %s %s %v %q", after.Status, after.MRN, after.Score, after.Reason, after.Version,
			before.Status, before.MRN, before.Score, before.Reason)
	}
	cands := func(d PageDetail) []string {
		var out []string
		for _, c := range d.Candidates {
			out = append(out, c.MRN)
		}
		return out
	}
	if !slices.Equal(cands(after), cands(before)) {
		t.Errorf("candidates after the undo %v, before %v", cands(after), cands(before))
	}
	if g, _ := db.FilingGeneration(ctx, k.DocumentID); g <= gen+1 {
		t.Errorf("filing generation %d after a decision and its undo, was %d: the undo did not bump it", g, gen)
	}
	if _, err := db.UndoDecision(ctx, undo); chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("a second undo: %v, want a conflict", err)
	}
	if rec, _ := db.Review(ctx, out.ReviewID); !rec.Undone || rec.Latest {
		t.Errorf("the undone decision reads %+v", rec)
	}
	if k2, ok, _ := db.NextReview(ctx, nil); !ok || k2 != k {
		t.Errorf("after the undo the queue offers %v, %v; want the page again", k2, ok)
	}
	// A reviewer holding the decided page's version is refused, and told of the undo.
	if _, err := db.Decide(ctx, Decision{PageKey: k, Version: 1, Action: ActionNotInEMPI, ActorID: bob.ID, Actor: "bob"}); chartscan.ErrorCode(err) != chartscan.EConflict ||
		!strings.Contains(chartscan.ErrorMessage(err), "ann undid") {
		t.Errorf("a decision on the decided version: %v", err)
	}
	if _, err := db.Decide(ctx, Decision{PageKey: k, Version: 2, Action: ActionConfirm, MRN: "100000002", ActorID: bob.ID, Actor: "bob"}); err != nil {
		t.Errorf("deciding the page again: %v", err)
	}
	entries, err := db.AuditEntries(ctx, AuditQuery{Action: "review.undo"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "ann" || entries[0].Detail["undone_action"] != ActionConfirm {
		t.Errorf("audit of the undo: %+v, %v", entries, err)
	}
	if bad, _, err := db.VerifyAudit(ctx); err != nil || bad != 0 {
		t.Errorf("audit chain: %d bad, %v", bad, err)
	}
}

// A page found not in the EMPI and undone is no longer kept by re-filing as a reviewer's.
func TestUndoneNotInEMPIIsFiledAgain(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	ann := reviewer(t, db, "ann")
	k := reviewPage(t, db)
	out, err := db.Decide(ctx, Decision{PageKey: k, Action: ActionNotInEMPI, ActorID: ann.ID, Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	if pages, _ := db.MatchPages(ctx, k.DocumentID); !pages[0].Decided {
		t.Fatal("a page found not in the EMPI is not kept as decided")
	}
	if _, err := db.UndoDecision(ctx, Undo{PageKey: k, ReviewID: out.ReviewID, ActorID: ann.ID, Actor: "ann", Within: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// The matcher now finds no candidate: the page is unmatched, but not by a reviewer.
	if err := db.SaveFilings(ctx, k.DocumentID, map[int]chartscan.Filing{1: {Status: chartscan.StatusUnmatched}}); err != nil {
		t.Fatal(err)
	}
	if pages, _ := db.MatchPages(ctx, k.DocumentID); pages[0].Decided || pages[0].Status != chartscan.StatusUnmatched {
		t.Errorf("after the undo and a re-filing: %+v, want unmatched and not decided", pages[0])
	}
}

// Skips are the session's: another session does not see them, and they end with it.
func TestSkipsLastTheSession(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	ann := reviewer(t, db, "ann")
	for _, h := range []string{"s1", "s2"} {
		if err := db.CreateSession(ctx, ann.ID, h, "csrf", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	k := reviewPage(t, db)
	for range 2 {
		if err := db.Skip(ctx, "s1", QueueReview, k); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := db.Skips(ctx, "s1", QueueReview); err != nil || len(got) != 1 || got[0] != k {
		t.Errorf("skips of the session: %v, %v", got, err)
	}
	for _, q := range [][2]string{{"s2", QueueReview}, {"s1", QueueQA}} {
		if got, _ := db.Skips(ctx, q[0], q[1]); len(got) != 0 {
			t.Errorf("skips of %v: %v, want none", q, got)
		}
	}
	if err := db.ClearSkips(ctx, "s1", QueueReview); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Skips(ctx, "s1", QueueReview); len(got) != 0 {
		t.Errorf("after start over: %v", got)
	}
	db.Skip(ctx, "s1", QueueReview, k)
	if err := db.DeleteSession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Skips(ctx, "s1", QueueReview); len(got) != 0 {
		t.Errorf("after sign-out: %v", got)
	}
}

// A page the matcher left unmatched, which no reviewer decided, is not a reviewer's.
func TestUnmatchedWithoutAReviewIsNotKept(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	k := reviewPage(t, db)
	if err := db.SaveFilings(ctx, k.DocumentID, map[int]chartscan.Filing{1: {Status: chartscan.StatusUnmatched}}); err != nil {
		t.Fatal(err)
	}
	pages, err := db.MatchPages(ctx, k.DocumentID)
	if err != nil || len(pages) != 1 || pages[0].Decided {
		t.Errorf("an unmatched page nobody reviewed: %+v, %v", pages, err)
	}
}
