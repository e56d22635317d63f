package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
)

// splitDocument stores a document of the given number of split, unread pages in a new
// batch b, as scan:split leaves it.
func splitDocument(t *testing.T, db *DB, b chartscan.Batch, pages int) chartscan.Document {
	t.Helper()
	ctx := context.Background()
	b.ID = uuid.NewString()
	if _, err := db.CreateBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	doc, _, err := db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(), FileName: "a.pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= pages; n++ {
		if err := db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: n, ImageKey: "k", ImageType: "image/png", Width: 10, Height: 10, DPI: 300}); err != nil {
			t.Fatal(err)
		}
	}
	return doc
}

// reviewPage stores a one-page document whose page waits for review with candidates.
func reviewPage(t *testing.T, db *DB) PageKey {
	t.Helper()
	ctx := context.Background()
	doc := splitDocument(t, db, chartscan.Batch{}, 1)
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: {Status: chartscan.StatusReview, MRN: "100000002", Score: 9,
		Candidates: []chartscan.Candidate{{MRN: "100000002", Score: 9}, {MRN: "100000005", Score: 8}}}}); err != nil {
		t.Fatal(err)
	}
	return PageKey{DocumentID: doc.ID, Page: 1}
}

func TestDecideSecondReviewerChangesNothing(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	k := reviewPage(t, db)
	d, err := db.PageDetail(ctx, k.DocumentID, k.Page)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Candidates) != 2 || d.Candidates[0].Patient.Family != "Smith" || d.Version != 0 {
		t.Fatalf("page detail: %+v", d)
	}
	next, ok, err := db.NextReview(ctx, nil)
	if err != nil || !ok || next != k {
		t.Fatalf("NextReview = %v, %v, %v; want %v", next, ok, err, k)
	}
	if _, ok, _ := db.NextReview(ctx, []PageKey{k}); ok {
		t.Error("NextReview returned the skipped page")
	}
	out, err := db.Decide(ctx, Decision{PageKey: k, Version: 0, Action: ActionConfirm, MRN: "100000002", Actor: "ann"})
	if err != nil || out.Status != chartscan.StatusConfirmed || out.Version != 1 {
		t.Fatalf("first decision: %+v, %v", out, err)
	}
	_, err = db.Decide(ctx, Decision{PageKey: k, Version: 0, Action: ActionNotInEMPI, Actor: "bob"})
	if chartscan.ErrorCode(err) != chartscan.EConflict || !strings.Contains(chartscan.ErrorMessage(err), "already decided by ann") {
		t.Fatalf("second decision: %v, want a conflict naming ann", err)
	}
	d, _ = db.PageDetail(ctx, k.DocumentID, k.Page)
	if d.Status != chartscan.StatusConfirmed || d.MRN != "100000002" || d.DecidedBy != "ann" {
		t.Errorf("after the collision: status %s, mrn %s, decided by %s", d.Status, d.MRN, d.DecidedBy)
	}
	if _, ok, _ := db.NextReview(ctx, nil); ok {
		t.Error("the decided page is still in the queue")
	}
	if bad, n, err := db.VerifyAudit(ctx); err != nil || bad != 0 || n != 1 {
		t.Errorf("audit after one decision: bad %d, %d entries, %v", bad, n, err)
	}
}

func TestDecideRefusesAnMRNNotInTheEMPI(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	k := reviewPage(t, db)
	_, err := db.Decide(context.Background(), Decision{PageKey: k, Action: ActionAssign, MRN: "999", Actor: "ann"})
	if chartscan.ErrorCode(err) != chartscan.EInvalid {
		t.Errorf("assign to an unknown MRN: %v, want invalid", err)
	}
	if d, _ := db.PageDetail(context.Background(), k.DocumentID, k.Page); d.Status != chartscan.StatusReview || d.Version != 0 {
		t.Errorf("a refused decision changed the page: %s v%d", d.Status, d.Version)
	}
}

// A reviewer's split sends the pages after it that were filed with the page before it
// back to review, and the matcher sees it as the start of a new segment from then on.
func TestDecideSplitSendsLaterPagesBackAndIsSeenByTheMatcher(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	doc := splitDocument(t, db, chartscan.Batch{}, 4)
	// Pages 1, 3 and 4 filed to one patient; page 2 in review (an uncertain boundary).
	filed := chartscan.Filing{Status: chartscan.StatusAuto, MRN: "100000002", Score: 30}
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: filed, 2: {Status: chartscan.StatusReview, MRN: "100000002", Score: 30}, 3: filed, 4: filed}); err != nil {
		t.Fatal(err)
	}
	out, err := db.Decide(ctx, Decision{PageKey: PageKey{doc.ID, 2}, Version: 0, Action: ActionSplit, Actor: "ann"})
	if err != nil || out.Status != chartscan.StatusReview || out.Moved != 2 {
		t.Fatalf("split: %+v, %v; want the page in review and 2 pages moved", out, err)
	}
	pages, err := db.MatchPages(ctx, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		wantStatus := chartscan.StatusReview
		if p.Number == 1 {
			wantStatus = chartscan.StatusAuto
		}
		if p.Status != wantStatus || p.SplitBefore != (p.Number == 2) {
			t.Errorf("page %d after the split: %s, split before %v", p.Number, p.Status, p.SplitBefore)
		}
	}
	entries, err := db.AuditEntries(ctx, AuditQuery{Action: "review.decide", Object: "page:" + doc.ID})
	if err != nil || len(entries) != 1 || entries[0].Detail["pages_back_to_review"] != float64(2) {
		t.Errorf("audit of the split: %+v, %v", entries, err)
	}
}

// Pages of an urgent batch come first in the review queue, however new.
func TestNextReviewUrgentBatchFirst(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	older := reviewPage(t, db)
	doc := splitDocument(t, db, chartscan.Batch{Label: "ward 4 needs it", Urgent: true}, 1)
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: {Status: chartscan.StatusReview}}); err != nil {
		t.Fatal(err)
	}
	urgent := PageKey{doc.ID, 1}
	if k, ok, err := db.NextReview(ctx, nil); err != nil || !ok || k != urgent {
		t.Errorf("NextReview = %v, %v, %v; want the urgent batch's page %v", k, ok, err, urgent)
	}
	if k, ok, err := db.NextReview(ctx, []PageKey{urgent}); err != nil || !ok || k != older {
		t.Errorf("NextReview after skipping it = %v, %v, %v; want the older page %v", k, ok, err, older)
	}
	if bs, err := db.Batch(ctx, doc.BatchID); err != nil || !bs.Urgent {
		t.Errorf("batch summary %+v, %v: want urgent", bs, err)
	}
}
