package storage

import (
	"context"
	"math"
	"testing"

	"github.com/chartscan/chartscan"
)

func TestBinomialUpper(t *testing.T) {
	for _, tc := range []struct {
		x, n int
		want float64
	}{
		{0, 1, 0.95},
		{0, 100, 1 - math.Pow(0.05, 0.01)}, // the "rule of three": about 3/n
		{1, 2, math.Sqrt(0.95)},            // P(X ≤ 1) = 1 − p² = 0.05
		{5, 5, 1},
	} {
		if got := binomialUpper(tc.x, tc.n, 0.05); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("binomialUpper(%d, %d) = %v, want %v", tc.x, tc.n, got, tc.want)
		}
	}
}

// A draw is made with the filing, withdrawn when the page is filed again without one,
// and a check is refused once the filing it was shown changed.
func TestQADrawFollowsTheFiling(t *testing.T) {
	db := openDB(t)
	importAll(t, db, empi...)
	ctx := context.Background()
	doc := splitDocument(t, db, chartscan.Batch{}, 2)
	auto := func(mrn string, qa bool) chartscan.Filing {
		return chartscan.Filing{Status: chartscan.StatusAuto, MRN: mrn, Score: 30, QACheck: qa}
	}
	// A draw on a page that is not auto-filed is no draw.
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000002", true),
		2: {Status: chartscan.StatusReview, MRN: "100000003", QACheck: true}}); err != nil {
		t.Fatal(err)
	}
	k, ok, err := db.NextQA(ctx, nil)
	if err != nil || !ok || k != (PageKey{doc.ID, 1}) {
		t.Fatalf("NextQA = %v, %v, %v; want page 1", k, ok, err)
	}
	if rep, err := db.QAReport(ctx); err != nil || rep.Sampled != 1 || rep.Waiting != 1 || rep.Checked != 0 || rep.ErrorRateUpper95 != 1 {
		t.Errorf("report before any check: %+v, %v", rep, err)
	}
	// Filed again, to another patient and not drawn: the draw is withdrawn.
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000005", false)}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.NextQA(ctx, nil); ok {
		t.Error("a draw survived the page being filed again without one")
	}
	// Drawn again; a check against the patient it was filed to before is refused.
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000005", true)}); err != nil {
		t.Fatal(err)
	}
	err = db.CheckQA(ctx, QACheck{PageKey: PageKey{doc.ID, 1}, MRN: "100000002", Outcome: QACorrect, Actor: "ann"})
	if chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("check against a changed filing: %v, want a conflict", err)
	}
	if err := db.CheckQA(ctx, QACheck{PageKey: PageKey{doc.ID, 1}, MRN: "100000005", Outcome: "maybe", Actor: "ann"}); chartscan.ErrorCode(err) != chartscan.EInvalid {
		t.Errorf("unknown outcome: %v, want invalid", err)
	}
	if err := db.CheckQA(ctx, QACheck{PageKey: PageKey{doc.ID, 2}, MRN: "100000003", Outcome: QAWrong, Actor: "ann"}); chartscan.ErrorCode(err) != chartscan.ENotFound {
		t.Errorf("check of a page never drawn: %v, want not found", err)
	}
	if err := db.CheckQA(ctx, QACheck{PageKey: PageKey{doc.ID, 1}, MRN: "100000005", Outcome: QAWrong, Actor: "ann"}); err != nil {
		t.Fatal(err)
	}
	d, err := db.PageDetail(ctx, doc.ID, 1)
	if err != nil || d.Status != chartscan.StatusReview {
		t.Errorf("page found misfiled: %v %v, want review", d.Status, err)
	}
	// Filing it again keeps the check made: it is history.
	if err := db.SaveFilings(ctx, doc.ID, map[int]chartscan.Filing{1: auto("100000002", false)}); err != nil {
		t.Fatal(err)
	}
	if rep, err := db.QAReport(ctx); err != nil || rep.Checked != 1 || rep.Wrong != 1 || rep.ErrorRate != 1 {
		t.Errorf("report after the check: %+v, %v", rep, err)
	}
}
