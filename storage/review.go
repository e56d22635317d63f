package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// PageKey names one page of one document.
type PageKey struct {
	DocumentID string `json:"document_id"`
	Page       int    `json:"page"`
}

// String is the key as the UI and the audit log write it: <document>/<page>.
func (k PageKey) String() string { return fmt.Sprintf("%s/%d", k.DocumentID, k.Page) }

// RankedCandidate is a candidate of a page's filing with the EMPI record it points at;
// Patient is zero when the record has left the EMPI since.
type RankedCandidate struct {
	chartscan.Candidate
	Patient chartscan.Patient `json:"patient"`
}

// PageDetail is everything the page and review views show about one page.
type PageDetail struct {
	chartscan.Page
	FileName   string            `json:"file_name"`
	BatchID    string            `json:"batch_id"`
	Text       string            `json:"-"` // served by its own audited route
	Version    int               `json:"version"`
	Candidates []RankedCandidate `json:"candidates"`
	PageCount  int               `json:"page_count"`
	PrevMRN    string            `json:"previous_mrn,omitempty"` // the previous page's filed MRN, for "continuation"
	DecidedBy  string            `json:"decided_by,omitempty"`   // the last reviewer who decided it
}

// PageDetail returns a page with its identifiers, text, ranked candidates and the
// previous page's filing. A missing page is ErrNotFound.
func (db *DB) PageDetail(ctx context.Context, documentID string, n int) (PageDetail, error) {
	d := PageDetail{Page: chartscan.Page{DocumentID: documentID, Number: n}}
	var mrn, docType, dos, text, prevMRN, decidedBy *string
	var score *float64
	var rotation *int
	err := db.pool.QueryRow(ctx, `
		SELECT p.status, p.reason, p.image_key, p.image_type, p.width, p.height, p.dpi, p.rotation,
		       p.mrn, p.score, p.doc_type, to_char(p.date_of_service, 'YYYY-MM-DD'), p.text, p.version,
		       d.file_name, d.batch_id::text, coalesce(d.page_count, 0),
		       (SELECT q.mrn FROM pages q WHERE q.document_id = p.document_id AND q.page_no = p.page_no - 1
		               AND q.status IN ('auto', 'confirmed')),
		       (SELECT r.actor FROM reviews r WHERE r.document_id = p.document_id AND r.page_no = p.page_no ORDER BY r.id DESC LIMIT 1)
		FROM pages p JOIN documents d ON d.id = p.document_id
		WHERE p.document_id = $1 AND p.page_no = $2`, documentID, n).Scan(
		&d.Status, &d.Reason, &d.ImageKey, &d.ImageType, &d.Width, &d.Height, &d.DPI, &rotation,
		&mrn, &score, &docType, &dos, &text, &d.Version, &d.FileName, &d.BatchID, &d.PageCount, &prevMRN, &decidedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("page %s/%d: %w", documentID, n, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("page %s/%d: %w", documentID, n, err)
	}
	d.MRN, d.DocType, d.DateOfService, d.Text, d.PrevMRN, d.DecidedBy = deref(mrn), deref(docType), deref(dos), deref(text), deref(prevMRN), deref(decidedBy)
	if score != nil {
		d.Score = *score
	}
	if rotation != nil {
		d.Rotation = *rotation
	}
	rows, err := db.pool.Query(ctx, `
		SELECT kind, value, raw, confidence, x0, y0, x1, y1 FROM page_identifiers
		WHERE document_id = $1 AND page_no = $2 ORDER BY kind`, documentID, n)
	if err != nil {
		return d, fmt.Errorf("page identifiers: %w", err)
	}
	d.Identifiers, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Identifier, error) {
		var id chartscan.Identifier
		var conf float32
		err := r.Scan(&id.Kind, &id.Value, &id.Raw, &conf, &id.Box.X0, &id.Box.Y0, &id.Box.X1, &id.Box.Y1)
		id.Confidence = float64(conf)
		return id, err
	})
	if err != nil {
		return d, fmt.Errorf("page identifiers: %w", err)
	}
	rows, err = db.pool.Query(ctx, `
		SELECT c.mrn, c.score, c.evidence, coalesce(p.mrn, ''), coalesce(p.family, ''), coalesce(p.given, ''),
		       `+birthDateSQL+`, coalesce(p.sex, '')
		FROM page_candidates c LEFT JOIN patients p ON p.mrn = c.mrn
		WHERE c.document_id = $1 AND c.page_no = $2 ORDER BY c.rank`, documentID, n)
	if err != nil {
		return d, fmt.Errorf("page candidates: %w", err)
	}
	d.Candidates, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (RankedCandidate, error) {
		var c RankedCandidate
		var ev []byte
		// Patient.MRN stays empty when the candidate is no longer in the EMPI; a patient
		// without a family name is still one.
		if err := r.Scan(&c.MRN, &c.Score, &ev, &c.Patient.MRN, &c.Patient.Family, &c.Patient.Given, &c.Patient.BirthDate, &c.Patient.Sex); err != nil {
			return c, err
		}
		return c, json.Unmarshal(ev, &c.Evidence)
	})
	if err != nil {
		return d, fmt.Errorf("page candidates: %w", err)
	}
	return d, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// maxSkip bounds how many skipped items a queue request may carry.
const maxSkip = 500

// NextReview returns the next page waiting for review: pages of urgent batches first,
// then the oldest document first, in page order within a document (so continuation pages
// follow the page they continue), passing over the pages in skip. ok is false when the
// queue is empty.
func (db *DB) NextReview(ctx context.Context, skip []PageKey) (k PageKey, ok bool, err error) {
	docs, nums := skipArrays(skip)
	err = db.pool.QueryRow(ctx, `
		SELECT p.document_id::text, p.page_no FROM pages p JOIN documents d ON d.id = p.document_id
		WHERE p.status = 'review'
		  AND (p.document_id::text, p.page_no) NOT IN (SELECT * FROM unnest($1::text[], $2::int[]))
		ORDER BY EXISTS (SELECT 1 FROM batch_documents bd JOIN batches b ON b.id = bd.batch_id
		                 WHERE bd.document_id = d.id AND b.urgent) DESC,
		         d.created_at, d.id, p.page_no LIMIT 1`, docs, nums).Scan(&k.DocumentID, &k.Page)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, fmt.Errorf("next review: %w", err)
	}
	return k, true, nil
}

// skipArrays turns the last maxSkip skipped pages into the two arrays a query unnests.
func skipArrays(skip []PageKey) (docs []string, nums []int32) {
	if len(skip) > maxSkip {
		skip = skip[len(skip)-maxSkip:]
	}
	docs = make([]string, len(skip))
	nums = make([]int32, len(skip))
	for i, s := range skip {
		docs[i], nums[i] = s.DocumentID, int32(s.Page)
	}
	return docs, nums
}

// ReviewCount counts the pages waiting for review.
func (db *DB) ReviewCount(ctx context.Context) (int, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pages WHERE status = 'review'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("review count: %w", err)
	}
	return n, nil
}

// Review actions.
const (
	ActionConfirm      = "confirm"      // file to MRN, one of the candidates
	ActionAssign       = "assign"       // file to MRN, found by searching the EMPI
	ActionNotInEMPI    = "not_in_empi"  // the patient is not in the EMPI: unmatched
	ActionContinuation = "continuation" // file with the previous page
	ActionSplit        = "split"        // a new patient starts here; the page stays in review
	ActionUndo         = "undo"         // a reviewer undid their decision (UndoDecision); not a decision itself
)

// Decision is a reviewer's decision on one page. Version is the page version the
// reviewer saw; Fields are the extracted fields as the reviewer corrected them.
type Decision struct {
	PageKey
	Version int
	Action  string
	MRN     string
	ActorID int64
	Actor   string
	Fields  map[string]string
}

// Decided is what a decision did.
type Decided struct {
	Status   chartscan.PageStatus `json:"status"`
	MRN      string               `json:"mrn,omitempty"`
	Version  int                  `json:"version"`
	Moved    int                  `json:"moved,omitempty"` // split: later pages sent back to review
	ReviewID int64                `json:"review_id"`       // the decision, for an undo (UndoDecision)
}

// pageBefore is a page's filing as it stood before a decision, kept with the decision so
// that its reviewer can undo it.
type pageBefore struct {
	Status     string                `json:"status"`
	MRN        *string               `json:"mrn"`
	Score      *float64              `json:"score"`
	Reason     string                `json:"reason"`
	FiledAt    *time.Time            `json:"filed_at"`
	Candidates []chartscan.Candidate `json:"candidates"`
}

// Decide applies a reviewer's decision in one transaction with its audit entry. It holds
// only if the page is still in review at the version the reviewer saw; otherwise it
// changes nothing and returns an EConflict naming who decided first. The document's
// patient documents follow the decision in the same transaction.
func (db *DB) Decide(ctx context.Context, d Decision) (Decided, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return Decided{}, err
	}
	defer tx.Rollback(ctx)
	out, err := decide(ctx, tx, d)
	if err != nil {
		return out, err
	}
	if err := refreshPatientDocuments(ctx, tx, d.DocumentID); err != nil {
		return out, err
	}
	return out, tx.Commit(ctx)
}

// DecideRun applies the decisions on a run of pages (issue 13, item 7: consecutive pages
// of a document confirmed to one patient at once) in one transaction: each is a decision
// of its own, with its review row and its audit entry, and either all hold or none does —
// one page decided by someone else, or changed since the reviewer saw it, refuses the run.
func (db *DB) DecideRun(ctx context.Context, ds []Decision) ([]Decided, error) {
	if len(ds) == 0 {
		return nil, chartscan.Errorf(chartscan.EInvalid, "no pages to decide")
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	// Every page of the run is locked first, in page order (see decide): deciding them one
	// by one would hold the document row from the first while waiting for a later page.
	runs := map[string][]int{}
	for _, d := range ds {
		runs[d.DocumentID] = append(runs[d.DocumentID], d.Page)
	}
	for _, doc := range slices.Sorted(maps.Keys(runs)) {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM pages WHERE document_id = $1 AND page_no = ANY($2) ORDER BY page_no FOR UPDATE`,
			doc, runs[doc]); err != nil {
			return nil, fmt.Errorf("decide: %w", err)
		}
	}
	var out []Decided
	docs := map[string]bool{}
	for _, d := range ds {
		o, err := decide(ctx, tx, d)
		if err != nil {
			if chartscan.ErrorCode(err) == chartscan.EConflict || chartscan.ErrorCode(err) == chartscan.EInvalid {
				return nil, chartscan.Errorf(chartscan.ErrorCode(err), "page %d: %s", d.Page, chartscan.ErrorMessage(err))
			}
			return nil, err
		}
		out = append(out, o)
		docs[d.DocumentID] = true
	}
	for _, doc := range slices.Sorted(maps.Keys(docs)) {
		if err := refreshPatientDocuments(ctx, tx, doc); err != nil {
			return nil, err
		}
	}
	return out, tx.Commit(ctx)
}

// decide applies one decision in tx, with its review row and audit entry.
func decide(ctx context.Context, tx pgx.Tx, d Decision) (Decided, error) {
	var status string
	var version int
	var proposed *string
	var before pageBefore
	// Locks are taken in one order everywhere: a document's pages in page order, then
	// the document row (which a page's version bump updates, by trigger). A split also
	// changes later pages, so it locks them here, before the bump below takes the
	// document row: otherwise a quality check holding a later page and waiting for the
	// document row deadlocks with it.
	if d.Action == ActionSplit {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM pages WHERE document_id = $1 AND page_no >= $2 ORDER BY page_no FOR UPDATE`,
			d.DocumentID, d.Page); err != nil {
			return Decided{}, fmt.Errorf("decide: %w", err)
		}
	}
	err := tx.QueryRow(ctx, `SELECT status, version, mrn, score, reason, filed_at FROM pages WHERE document_id = $1 AND page_no = $2 FOR UPDATE`,
		d.DocumentID, d.Page).Scan(&status, &version, &proposed, &before.Score, &before.Reason, &before.FiledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Decided{}, chartscan.Errorf(chartscan.ENotFound, "no such page")
	}
	if err != nil {
		return Decided{}, fmt.Errorf("decide: %w", err)
	}
	if status != string(chartscan.StatusReview) || version != d.Version {
		var by, action string
		var at time.Time
		err := tx.QueryRow(ctx, `SELECT actor, action, decided_at FROM reviews WHERE document_id = $1 AND page_no = $2 ORDER BY id DESC LIMIT 1`,
			d.DocumentID, d.Page).Scan(&by, &action, &at)
		if err == nil && action == ActionUndo {
			return Decided{}, chartscan.Errorf(chartscan.EConflict, "%s undid a decision on this page at %s; nothing was changed", by, at.Format("15:04:05"))
		}
		if err == nil {
			return Decided{}, chartscan.Errorf(chartscan.EConflict, "already decided by %s at %s; nothing was changed", by, at.Format("15:04:05"))
		}
		return Decided{}, chartscan.Errorf(chartscan.EConflict, "this page is no longer waiting for review; nothing was changed")
	}
	before.Status, before.MRN = status, proposed
	if before.Candidates, err = pageCandidates(ctx, tx, d.DocumentID, d.Page); err != nil {
		return Decided{}, fmt.Errorf("decide: %w", err)
	}
	out := Decided{Version: version + 1}
	switch d.Action {
	case ActionConfirm, ActionAssign:
		if d.MRN == "" {
			return out, chartscan.Errorf(chartscan.EInvalid, "choose a patient")
		}
		// A merged-away MRN files to the survivor, as the matcher would.
		err := tx.QueryRow(ctx, `SELECT mrn FROM patients WHERE mrn = $1
			UNION ALL SELECT mrn FROM patient_aliases WHERE alias_mrn = $1 LIMIT 1`, d.MRN).Scan(&out.MRN)
		if errors.Is(err, pgx.ErrNoRows) {
			return out, chartscan.Errorf(chartscan.EInvalid, "that MRN is not in the EMPI")
		}
		if err != nil {
			return out, fmt.Errorf("decide: %w", err)
		}
		out.Status = chartscan.StatusConfirmed
	case ActionNotInEMPI:
		out.Status = chartscan.StatusUnmatched
	case ActionContinuation:
		err := tx.QueryRow(ctx, `SELECT mrn FROM pages WHERE document_id = $1 AND page_no = $2 - 1
			AND status IN ('auto', 'confirmed') AND mrn IS NOT NULL`, d.DocumentID, d.Page).Scan(&out.MRN)
		if errors.Is(err, pgx.ErrNoRows) {
			return out, chartscan.Errorf(chartscan.EInvalid, "the previous page is not filed to a patient yet; decide it first")
		}
		if err != nil {
			return out, fmt.Errorf("decide: %w", err)
		}
		out.Status = chartscan.StatusConfirmed
	case ActionSplit:
		out.Status = chartscan.StatusReview
	default:
		return out, chartscan.Errorf(chartscan.EInvalid, "unknown review action %q", d.Action)
	}
	var mrn *string
	if out.MRN != "" {
		mrn = &out.MRN
	}
	if d.Action == ActionSplit {
		if _, err := tx.Exec(ctx, `INSERT INTO page_splits (document_id, page_no, actor) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			d.DocumentID, d.Page, d.Actor); err != nil {
			return out, fmt.Errorf("decide: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE pages SET version = version + 1, reason = 'a reviewer split the document here: a new patient starts on this page', updated_at = now()
			WHERE document_id = $1 AND page_no = $2`, d.DocumentID, d.Page); err != nil {
			return out, fmt.Errorf("decide: %w", err)
		}
		// Pages after the split that were filed automatically with the page before it were
		// carried across the boundary the reviewer saw: they go back to review.
		tag, err := tx.Exec(ctx, `
			WITH prev AS (SELECT mrn FROM pages WHERE document_id = $1 AND page_no = $2 - 1),
			     next_split AS (SELECT coalesce(min(page_no), 2147483647) AS n FROM page_splits WHERE document_id = $1 AND page_no > $2)
			UPDATE pages p SET status = 'review', reason = 'after a split a reviewer made: check the patient', version = version + 1, updated_at = now()
			FROM prev, next_split
			WHERE p.document_id = $1 AND p.page_no > $2 AND p.page_no < next_split.n
			  AND p.status = 'auto' AND p.mrn IS NOT DISTINCT FROM prev.mrn`, d.DocumentID, d.Page)
		if err != nil {
			return out, fmt.Errorf("decide: %w", err)
		}
		out.Moved = int(tag.RowsAffected())
	} else if _, err := tx.Exec(ctx, `
		UPDATE pages SET status = $3, mrn = $4, version = version + 1, filed_at = now(), updated_at = now(),
		       reason = 'decided by a reviewer'
		WHERE document_id = $1 AND page_no = $2`, d.DocumentID, d.Page, string(out.Status), mrn); err != nil {
		return out, fmt.Errorf("decide: %w", err)
	}
	fields, _ := json.Marshal(d.Fields)
	if d.Fields == nil {
		fields = []byte("{}")
	}
	var actorID *int64
	if d.ActorID != 0 {
		actorID = &d.ActorID
	}
	beforeJSON, err := json.Marshal(before)
	if err != nil {
		return out, fmt.Errorf("decide: %w", err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO reviews (document_id, page_no, action, mrn, actor_id, actor, fields, before, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`, d.DocumentID, d.Page, d.Action, mrn, actorID, d.Actor, fields,
		beforeJSON, out.Version).Scan(&out.ReviewID); err != nil {
		return out, fmt.Errorf("decide: %w", err)
	}
	detail := map[string]any{"action": d.Action, "version": d.Version, "status": string(out.Status), "review_id": out.ReviewID}
	if out.MRN != "" {
		detail["mrn"] = out.MRN
	}
	if proposed != nil && *proposed != out.MRN {
		detail["proposed_mrn"] = *proposed
	}
	if out.Moved > 0 {
		detail["pages_back_to_review"] = out.Moved
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: d.Actor, Action: "review.decide", Object: "page:" + d.PageKey.String(),
		Outcome: "ok", Detail: detail}); err != nil {
		return out, err
	}
	return out, nil
}

// ChartPage is one page filed to a patient, for the patient chart.
type ChartPage struct {
	PageKey
	FileName      string `json:"file_name"`
	Status        string `json:"status"`
	DocType       string `json:"doc_type"`
	DateOfService string `json:"date_of_service"`
	Text          string `json:"text"`
}

// PatientPages returns the pages filed to a patient (automatically or by a reviewer),
// by document type, newest date of service first, then in document order.
func (db *DB) PatientPages(ctx context.Context, mrn string) ([]ChartPage, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT p.document_id::text, p.page_no, d.file_name, p.status, coalesce(p.doc_type, ''),
		       coalesce(to_char(p.date_of_service, 'YYYY-MM-DD'), ''), coalesce(p.text, '')
		FROM pages p JOIN documents d ON d.id = p.document_id
		WHERE p.mrn = $1 AND p.status IN ('auto', 'confirmed')
		ORDER BY coalesce(p.doc_type, 'zzz'), p.date_of_service DESC NULLS LAST, d.created_at, p.document_id, p.page_no`, mrn)
	if err != nil {
		return nil, fmt.Errorf("patient pages: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChartPage, error) {
		var c ChartPage
		err := r.Scan(&c.DocumentID, &c.Page, &c.FileName, &c.Status, &c.DocType, &c.DateOfService, &c.Text)
		return c, err
	})
}

// Patient returns the EMPI record with this MRN, following a merge's alias.
func (db *DB) Patient(ctx context.Context, mrn string) (chartscan.Patient, error) {
	var p chartscan.Patient
	err := db.pool.QueryRow(ctx, `
		SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex,
		       p.street, p.city, p.postcode, p.state, p.phone
		FROM patients p WHERE p.mrn = coalesce((SELECT mrn FROM patient_aliases WHERE alias_mrn = $1), $1)`, mrn).Scan(
		&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("patient: %w", ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("patient: %w", err)
	}
	return p, nil
}
