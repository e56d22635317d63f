package storage

import (
	"context"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
)

// A decision that changes more than its own page — a split, which sends later pages back
// to review, or a run of pages decided at once — must not hold the document row while it
// waits for a later page. A quality check (or an undo) holding that later page takes the
// document row next, by the trigger that bumps the document's filing generation; the two
// deadlocked, and PostgreSQL aborted one (CI, TestRefileRacingReviewersKeepsEveryDecision).
// Here the later page is held by an open transaction that then does what a quality check
// does to it; both must finish.
func TestDecisionsOnSeveralPagesTakeLocksInPageOrder(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		decide func(doc string, v2, v3 int) error
	}{
		{"split", func(doc string, v2, _ int) error {
			d, err := db.Decide(ctx, Decision{PageKey: PageKey{doc, 2}, Version: v2, Action: ActionSplit, Actor: "ann"})
			if err == nil && d.Moved != 1 {
				t.Errorf("split moved %d later pages back to review, want 1", d.Moved)
			}
			return err
		}},
		{"run", func(doc string, v2, v3 int) error {
			_, err := db.DecideRun(ctx, []Decision{
				{PageKey: PageKey{doc, 2}, Version: v2, Action: ActionAssign, MRN: "100000002", Actor: "ann"},
				{PageKey: PageKey{doc, 3}, Version: v3, Action: ActionAssign, MRN: "100000002", Actor: "ann"}})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := splitDocument(t, db, chartscan.Batch{}, 3)
			page3 := chartscan.Filing{Status: chartscan.StatusAuto, MRN: "100000002", Score: 30, QACheck: true}
			if tc.name == "run" {
				page3 = chartscan.Filing{Status: chartscan.StatusReview, MRN: "100000002"}
			}
			if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{
				1: {Status: chartscan.StatusAuto, MRN: "100000002", Score: 30},
				2: {Status: chartscan.StatusReview, MRN: "100000003"},
				3: page3}); err != nil {
				t.Fatal(err)
			}
			p2, err := db.PageDetail(ctx, doc.ID, 2)
			if err != nil {
				t.Fatal(err)
			}
			p3, err := db.PageDetail(ctx, doc.ID, 3)
			if err != nil {
				t.Fatal(err)
			}
			other, err := db.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Rollback(ctx)
			if _, err := other.Exec(ctx, `SELECT 1 FROM pages WHERE document_id = $1 AND page_no = 3 FOR UPDATE`, doc.ID); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tc.decide(doc.ID, p2.Version, p3.Version) }()
			time.Sleep(300 * time.Millisecond) // the decision is under way, waiting for page 3
			if _, err := other.Exec(ctx, `UPDATE pages SET version = version + 1, updated_at = now() WHERE document_id = $1 AND page_no = 3`, doc.ID); err != nil {
				t.Fatalf("the transaction holding page 3: %v", err)
			}
			if err := other.Commit(ctx); err != nil {
				t.Fatalf("the transaction holding page 3: %v", err)
			}
			select {
			case err := <-done:
				if tc.name == "run" && chartscan.ErrorCode(err) == chartscan.EConflict {
					err = nil // page 3 changed under the reviewer: refused, as it should be
				}
				if err != nil {
					t.Errorf("the decision: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the decision never finished")
			}
		})
	}
}
