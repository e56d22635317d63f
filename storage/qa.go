package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// QA outcomes: what a reviewer found when checking an automatically filed page.
const (
	QACorrect = "correct" // filed to the right patient
	QAWrong   = "wrong"   // filed to another patient: the page goes back to review
)

// NextQA returns the next drawn page waiting for its check, the oldest draw first,
// passing over the pages in skip. A draw whose page no longer stands as it was drawn (a
// reviewer or a merge moved it, a re-filing changed it) is not offered. ok is false when
// nothing waits.
func (db *DB) NextQA(ctx context.Context, skip []PageKey) (k PageKey, ok bool, err error) {
	docs, nums := skipArrays(skip)
	err = db.pool.QueryRow(ctx, `
		SELECT q.document_id::text, q.page_no FROM qa_checks q JOIN pages p USING (document_id, page_no)
		WHERE q.outcome IS NULL AND p.status = 'auto' AND p.mrn = q.mrn
		  AND (q.document_id::text, q.page_no) NOT IN (SELECT * FROM unnest($1::text[], $2::int[]))
		ORDER BY q.sampled_at, q.document_id, q.page_no LIMIT 1`, docs, nums).Scan(&k.DocumentID, &k.Page)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, fmt.Errorf("next qa: %w", err)
	}
	return k, true, nil
}

// QACheck is a reviewer's check of one drawn page: MRN is the patient the reviewer saw it
// filed to, so a check never applies to a filing that changed under them.
type QACheck struct {
	PageKey
	MRN     string
	Outcome string // QACorrect or QAWrong
	ActorID int64
	Actor   string
}

// CheckQA records a reviewer's check with its audit entry, in one transaction. A page
// found filed to the wrong patient goes back to review at once, filing and all, so the
// reviewer who picks it up there refiles it. A check of a page that is no longer drawn,
// already checked, or no longer filed to MRN changes nothing and returns an EConflict.
func (db *DB) CheckQA(ctx context.Context, c QACheck) error {
	if c.Outcome != QACorrect && c.Outcome != QAWrong {
		return chartscan.Errorf(chartscan.EInvalid, "unknown QA outcome %q: want %s or %s", c.Outcome, QACorrect, QAWrong)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// The page first, then its draw: a filing locks a document's pages, then deletes
	// their draws; locking the draw first would deadlock with it.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM pages WHERE document_id = $1 AND page_no = $2 FOR UPDATE`, c.DocumentID, c.Page); err != nil {
		return fmt.Errorf("qa check: %w", err)
	}
	var drawn string
	var outcome, by, status, filed *string
	err = tx.QueryRow(ctx, `
		SELECT q.mrn, q.outcome, q.actor, p.status, p.mrn FROM qa_checks q JOIN pages p USING (document_id, page_no)
		WHERE q.document_id = $1 AND q.page_no = $2 FOR UPDATE`, c.DocumentID, c.Page).Scan(&drawn, &outcome, &by, &status, &filed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return chartscan.Errorf(chartscan.ENotFound, "this page was not drawn for a quality check")
	case err != nil:
		return fmt.Errorf("qa check: %w", err)
	case outcome != nil:
		return chartscan.Errorf(chartscan.EConflict, "already checked by %s; nothing was changed", deref(by))
	case deref(status) != string(chartscan.StatusAuto) || deref(filed) != drawn || drawn != c.MRN:
		return chartscan.Errorf(chartscan.EConflict, "the page's filing changed since it was shown; nothing was changed")
	}
	if _, err := tx.Exec(ctx, `UPDATE qa_checks SET outcome = $3, actor = $4, decided_at = now() WHERE document_id = $1 AND page_no = $2`,
		c.DocumentID, c.Page, c.Outcome, c.Actor); err != nil {
		return fmt.Errorf("qa check: %w", err)
	}
	if c.Outcome == QAWrong {
		if _, err := tx.Exec(ctx, `
			UPDATE pages SET status = 'review', reason = 'quality check: a reviewer found this page filed to the wrong patient',
			       version = version + 1, updated_at = now()
			WHERE document_id = $1 AND page_no = $2`, c.DocumentID, c.Page); err != nil {
			return fmt.Errorf("qa check: %w", err)
		}
		if err := refreshPatientDocuments(ctx, tx, c.DocumentID); err != nil {
			return err
		}
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: c.Actor, Action: "qa.check", Object: "page:" + c.PageKey.String(),
		Outcome: "ok", Detail: map[string]any{"outcome": c.Outcome, "mrn": drawn}}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// QAReport sums up the quality checks of automatic filing.
type QAReport struct {
	Sampled int       `json:"sampled"` // pages drawn
	Checked int       `json:"checked"` // of those, checked by a reviewer
	Wrong   int       `json:"wrong"`   // of those, found filed to the wrong patient
	Waiting int       `json:"waiting"` // drawn, still filed as drawn, not yet checked
	Since   time.Time `json:"since"`   // the first draw; zero when none
	// ErrorRate is Wrong/Checked; ErrorRateUpper95 the one-sided 95% Clopper–Pearson
	// upper bound of the misfile rate of automatic filing those checks support (with no
	// error found, about 3/Checked). Both are 0 and 1 when nothing was checked.
	ErrorRate        float64 `json:"error_rate"`
	ErrorRateUpper95 float64 `json:"error_rate_upper_95"`
}

// QAReport counts the draws and their checks.
func (db *DB) QAReport(ctx context.Context) (QAReport, error) {
	var r QAReport
	var since *time.Time
	err := db.pool.QueryRow(ctx, `
		SELECT count(*), count(q.outcome), count(*) FILTER (WHERE q.outcome = 'wrong'),
		       count(*) FILTER (WHERE q.outcome IS NULL AND p.status = 'auto' AND p.mrn = q.mrn), min(q.sampled_at)
		FROM qa_checks q JOIN pages p USING (document_id, page_no)`).Scan(&r.Sampled, &r.Checked, &r.Wrong, &r.Waiting, &since)
	if err != nil {
		return r, fmt.Errorf("qa report: %w", err)
	}
	if since != nil {
		r.Since = *since
	}
	r.ErrorRateUpper95 = 1
	if r.Checked > 0 {
		r.ErrorRate = float64(r.Wrong) / float64(r.Checked)
		r.ErrorRateUpper95 = binomialUpper(r.Wrong, r.Checked, 0.05)
	}
	return r, nil
}

// binomialUpper returns the one-sided Clopper–Pearson upper confidence bound at level
// 1−alpha for a proportion with x successes in n trials: the p at which seeing x or fewer
// has probability alpha. It bisects the binomial distribution function.
func binomialUpper(x, n int, alpha float64) float64 {
	if x >= n {
		return 1
	}
	lo, hi := float64(x)/float64(n), 1.0
	for range 100 {
		mid := (lo + hi) / 2
		if binomialCDF(x, n, mid) > alpha {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// binomialCDF is P(X ≤ x) for X ~ Binomial(n, p), summed in logs.
func binomialCDF(x, n int, p float64) float64 {
	if p <= 0 {
		return 1
	}
	if p >= 1 {
		if x >= n {
			return 1
		}
		return 0
	}
	lgN, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for k := 0; k <= x; k++ {
		lgK, _ := math.Lgamma(float64(k + 1))
		lgNK, _ := math.Lgamma(float64(n - k + 1))
		sum += math.Exp(lgN - lgK - lgNK + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
	}
	return math.Min(sum, 1)
}
