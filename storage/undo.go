package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// pageCandidates reads a page's ranked candidates in tx, for a decision to keep.
func pageCandidates(ctx context.Context, tx pgx.Tx, documentID string, n int) ([]chartscan.Candidate, error) {
	rows, err := tx.Query(ctx, `
		SELECT mrn, score, evidence FROM page_candidates WHERE document_id = $1 AND page_no = $2 ORDER BY rank`, documentID, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Candidate, error) {
		var c chartscan.Candidate
		var ev []byte
		if err := r.Scan(&c.MRN, &c.Score, &ev); err != nil {
			return c, err
		}
		return c, json.Unmarshal(ev, &c.Evidence)
	})
}

// ReviewRecord is one row of a page's review history — a decision or an undo — with the
// patient it names, for the outcome message after a decision and for the reviewer who
// finds a page decided under them.
type ReviewRecord struct {
	ID int64 `json:"id"`
	PageKey
	FileName  string            `json:"file_name"`
	Action    string            `json:"action"`
	MRN       string            `json:"mrn,omitempty"`
	Patient   chartscan.Patient `json:"patient"` // zero without an MRN, or when the record left the EMPI
	Actor     string            `json:"actor"`
	ActorID   int64             `json:"-"`
	DecidedAt time.Time         `json:"decided_at"`
	Age       time.Duration     `json:"-"`       // since the decision, by the database's clock
	Undoable  bool              `json:"-"`       // a decision that kept the page as it was before it
	Undone    bool              `json:"undone"`  // an undo names it
	Latest    bool              `json:"-"`       // no later review row of the page
	Version   int               `json:"version"` // the page version it left (0: not recorded)
}

const reviewRecordSQL = `
	SELECT r.id, r.document_id::text, r.page_no, d.file_name, r.action, coalesce(r.mrn, ''), r.actor, coalesce(r.actor_id, 0),
	       r.decided_at, extract(epoch FROM now() - r.decided_at)::float8,
	       r.before IS NOT NULL AND r.action <> 'undo',
	       EXISTS (SELECT 1 FROM reviews u WHERE u.undoes = r.id),
	       NOT EXISTS (SELECT 1 FROM reviews l WHERE l.document_id = r.document_id AND l.page_no = r.page_no AND l.id > r.id),
	       coalesce(r.version, 0),
	       coalesce(p.mrn, ''), coalesce(p.family, ''), coalesce(p.given, ''), ` + birthDateSQL + `, coalesce(p.sex, '')
	FROM reviews r JOIN documents d ON d.id = r.document_id
	LEFT JOIN patients p ON p.mrn = coalesce((SELECT a.mrn FROM patient_aliases a WHERE a.alias_mrn = r.mrn), r.mrn)`

func scanReviewRecord(row pgx.Row) (ReviewRecord, error) {
	var r ReviewRecord
	var age float64
	err := row.Scan(&r.ID, &r.DocumentID, &r.Page, &r.FileName, &r.Action, &r.MRN, &r.Actor, &r.ActorID, &r.DecidedAt, &age,
		&r.Undoable, &r.Undone, &r.Latest, &r.Version,
		&r.Patient.MRN, &r.Patient.Family, &r.Patient.Given, &r.Patient.BirthDate, &r.Patient.Sex)
	r.Age = time.Duration(age * float64(time.Second))
	return r, err
}

// Review returns one review row by its id; a missing one is ErrNotFound.
func (db *DB) Review(ctx context.Context, id int64) (ReviewRecord, error) {
	r, err := scanReviewRecord(db.pool.QueryRow(ctx, reviewRecordSQL+` WHERE r.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("review %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("review: %w", err)
	}
	return r, nil
}

// LastReview returns the latest review row of a page; ok is false when nobody decided it.
func (db *DB) LastReview(ctx context.Context, documentID string, n int) (r ReviewRecord, ok bool, err error) {
	r, err = scanReviewRecord(db.pool.QueryRow(ctx, reviewRecordSQL+`
		WHERE r.document_id = $1 AND r.page_no = $2 ORDER BY r.id DESC LIMIT 1`, documentID, n))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("last review: %w", err)
	}
	return r, true, nil
}

// Undo asks to undo a reviewer's decision on a page.
type Undo struct {
	PageKey
	ReviewID int64
	ActorID  int64
	Actor    string
	Within   time.Duration // how long after the decision it may still be undone
}

// Undone is what an undo did: the page is back as it was before the decision.
type Undone struct {
	Status  chartscan.PageStatus `json:"status"`
	Version int                  `json:"version"`
	Action  string               `json:"undone_action"`
	MRN     string               `json:"undone_mrn,omitempty"`
}

// UndoDecision undoes a decision its own reviewer made less than Within ago: the page gets
// back the status, proposed MRN, score, reason and ranked candidates it had before it (a
// split's mark is taken away), in one transaction with a review row of action "undo" and
// its audit entry. Its version is bumped like a decision's, so a filing computed before
// the undo saves nothing (the filing generation) and a reviewer holding the decided page
// is refused. It holds only if the decision is still the page's latest and the page is
// still at the version the decision left; otherwise it changes nothing and returns an
// EConflict (ENotFound for a decision that is not this page's).
func (db *DB) UndoDecision(ctx context.Context, u Undo) (Undone, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return Undone{}, err
	}
	defer tx.Rollback(ctx)
	var version int
	err = tx.QueryRow(ctx, `SELECT version FROM pages WHERE document_id = $1 AND page_no = $2 FOR UPDATE`,
		u.DocumentID, u.Page).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Undone{}, chartscan.Errorf(chartscan.ENotFound, "no such page")
	}
	if err != nil {
		return Undone{}, fmt.Errorf("undo: %w", err)
	}
	var action string
	var mrn *string
	var actorID *int64
	var beforeJSON []byte
	var left *int
	var age float64
	var latest bool
	err = tx.QueryRow(ctx, `
		SELECT r.action, r.mrn, r.actor_id, r.before, r.version, extract(epoch FROM now() - r.decided_at)::float8,
		       NOT EXISTS (SELECT 1 FROM reviews l WHERE l.document_id = r.document_id AND l.page_no = r.page_no AND l.id > r.id)
		FROM reviews r WHERE r.id = $1 AND r.document_id = $2 AND r.page_no = $3`, u.ReviewID, u.DocumentID, u.Page).Scan(
		&action, &mrn, &actorID, &beforeJSON, &left, &age, &latest)
	if errors.Is(err, pgx.ErrNoRows) {
		return Undone{}, chartscan.Errorf(chartscan.ENotFound, "no such decision on this page")
	}
	if err != nil {
		return Undone{}, fmt.Errorf("undo: %w", err)
	}
	switch {
	case action == ActionUndo || beforeJSON == nil || left == nil:
		return Undone{}, chartscan.Errorf(chartscan.EConflict, "this decision cannot be undone; nothing was changed")
	case actorID == nil || *actorID != u.ActorID:
		return Undone{}, chartscan.Errorf(chartscan.EConflict, "only the reviewer who made a decision can undo it; nothing was changed")
	case !latest:
		return Undone{}, chartscan.Errorf(chartscan.EConflict, "the page was decided again since (or the decision was undone already); nothing was changed")
	case *left != version:
		return Undone{}, chartscan.Errorf(chartscan.EConflict, "the page changed since the decision; nothing was changed")
	case time.Duration(age*float64(time.Second)) > u.Within:
		return Undone{}, chartscan.Errorf(chartscan.EConflict, "too late to undo: a decision can be undone for %v after it is made; nothing was changed", u.Within)
	}
	var before pageBefore
	if err := json.Unmarshal(beforeJSON, &before); err != nil {
		return Undone{}, fmt.Errorf("undo: the decision's record: %w", err)
	}
	out := Undone{Status: chartscan.PageStatus(before.Status), Version: version + 1, Action: action, MRN: deref(mrn)}
	batch := &pgx.Batch{}
	batch.Queue(`UPDATE pages SET status = $3, mrn = $4, score = $5, reason = $6, filed_at = $7, version = version + 1, updated_at = now()
		WHERE document_id = $1 AND page_no = $2`, u.DocumentID, u.Page, before.Status, before.MRN, before.Score, before.Reason, before.FiledAt)
	batch.Queue(`DELETE FROM page_candidates WHERE document_id = $1 AND page_no = $2`, u.DocumentID, u.Page)
	for rank, c := range before.Candidates {
		ev, err := json.Marshal(c.Evidence)
		if err != nil {
			return out, err
		}
		batch.Queue(`INSERT INTO page_candidates (document_id, page_no, rank, mrn, score, evidence) VALUES ($1, $2, $3, $4, $5, $6)`,
			u.DocumentID, u.Page, rank+1, c.MRN, c.Score, ev)
	}
	if action == ActionSplit {
		batch.Queue(`DELETE FROM page_splits WHERE document_id = $1 AND page_no = $2`, u.DocumentID, u.Page)
	}
	var actor *int64
	if u.ActorID != 0 {
		actor = &u.ActorID
	}
	batch.Queue(`INSERT INTO reviews (document_id, page_no, action, actor_id, actor, undoes, version) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.DocumentID, u.Page, ActionUndo, actor, u.Actor, u.ReviewID, out.Version)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return out, fmt.Errorf("undo: %w", err)
	}
	detail := map[string]any{"undone_action": action, "undone_review_id": u.ReviewID, "status": before.Status, "version": version}
	if out.MRN != "" {
		detail["undone_mrn"] = out.MRN
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: u.Actor, Action: "review.undo", Object: "page:" + u.PageKey.String(),
		Outcome: "ok", Detail: detail}); err != nil {
		return out, err
	}
	if err := refreshPatientDocuments(ctx, tx, u.DocumentID); err != nil {
		return out, err
	}
	return out, tx.Commit(ctx)
}
