package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// Ping checks that PostgreSQL answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// PageQuery selects pages for search. Text is a web-search style query over the OCR text
// (words, "quoted phrases", -excluded); every other field, when set, filters.
type PageQuery struct {
	Text    string
	BatchID string
	Status  string
	DocType string
	From    string // date of service, YYYY-MM-DD, inclusive
	To      string
	Limit   int
}

// PageHit is one page a search found. Snippet is OCR text around the matches, with each
// match between the runes « and » for the caller to mark up.
type PageHit struct {
	PageKey
	FileName      string  `json:"file_name"`
	Status        string  `json:"status"`
	MRN           string  `json:"mrn,omitempty"`
	DocType       string  `json:"doc_type,omitempty"`
	DateOfService string  `json:"date_of_service,omitempty"`
	Snippet       string  `json:"snippet"`
	Rank          float64 `json:"rank"`
}

// SearchPages finds pages by the full-text index of their OCR text and by filters, best
// match first (newest first without text).
func (db *DB) SearchPages(ctx context.Context, q PageQuery) ([]PageHit, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	var from, to *time.Time
	for _, d := range []struct {
		s   string
		dst **time.Time
	}{{q.From, &from}, {q.To, &to}} {
		if d.s == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.s)
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "dates are written YYYY-MM-DD")
		}
		*d.dst = &t
	}
	rows, err := db.pool.Query(ctx, `
		WITH q AS (SELECT CASE WHEN $1 = '' THEN NULL ELSE websearch_to_tsquery('english', $1) END AS tsq)
		SELECT p.document_id::text, p.page_no, d.file_name, p.status, coalesce(p.mrn, ''), coalesce(p.doc_type, ''),
		       coalesce(to_char(p.date_of_service, 'YYYY-MM-DD'), ''),
		       CASE WHEN q.tsq IS NULL THEN left(coalesce(p.text, ''), 160)
		            ELSE ts_headline('english', coalesce(p.text, ''), q.tsq, 'StartSel=«, StopSel=», MaxFragments=2, MaxWords=18, MinWords=6') END,
		       CASE WHEN q.tsq IS NULL THEN 0 ELSE ts_rank(p.tsv, q.tsq) END AS rank
		FROM pages p JOIN documents d ON d.id = p.document_id, q
		WHERE (q.tsq IS NULL OR p.tsv @@ q.tsq)
		  AND ($2 = '' OR EXISTS (SELECT 1 FROM batch_documents bd WHERE bd.document_id = p.document_id AND bd.batch_id::text = $2))
		  AND ($3 = '' OR p.status = $3)
		  AND ($4 = '' OR p.doc_type = $4)
		  AND ($5::date IS NULL OR p.date_of_service >= $5)
		  AND ($6::date IS NULL OR p.date_of_service <= $6)
		ORDER BY rank DESC, d.created_at DESC, p.document_id, p.page_no
		LIMIT $7`, q.Text, q.BatchID, q.Status, q.DocType, from, to, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("search pages: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PageHit, error) {
		var h PageHit
		var rank float32
		err := r.Scan(&h.DocumentID, &h.Page, &h.FileName, &h.Status, &h.MRN, &h.DocType, &h.DateOfService, &h.Snippet, &rank)
		h.Rank = float64(rank)
		return h, err
	})
}

// SearchPatients finds EMPI patients for a reviewer's query: an MRN (exact, or a prefix
// of at least four digits; a merged-away MRN finds the patient it was merged into), a birth date (YYYY-MM-DD), or a name ("family, given" or
// "family given"), by trigram similarity; several of these may be combined in one query.
func (db *DB) SearchPatients(ctx context.Context, query string, limit int) ([]chartscan.Patient, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	var mrn, name string
	var dob *time.Time
	var words []string
	for _, w := range strings.FieldsFunc(query, func(r rune) bool { return unicode.IsSpace(r) || r == ',' }) {
		if t, err := time.Parse(time.DateOnly, w); err == nil {
			dob = &t
		} else if strings.IndexFunc(w, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
			mrn = w
		} else {
			words = append(words, w)
		}
	}
	name = strings.ToLower(strings.Join(words, " "))
	if mrn == "" && name == "" && dob == nil {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex,
		       p.street, p.city, p.postcode, p.state, p.phone
		FROM patients p
		WHERE ($1 = '' OR p.mrn = $1 OR (length($1) >= 4 AND p.mrn LIKE $1 || '%')
		       OR p.mrn = (SELECT a.mrn FROM patient_aliases a WHERE a.alias_mrn = $1))
		  AND ($2 = '' OR p.full_name % $2 OR p.full_name LIKE '%' || $2 || '%' OR lower(p.family) = $2)
		  AND ($3::date IS NULL OR p.birth_date = $3)
		ORDER BY (p.mrn = $1 OR p.mrn = (SELECT a.mrn FROM patient_aliases a WHERE a.alias_mrn = $1)) DESC, similarity(p.full_name, $2) DESC, p.family, p.given
		LIMIT $4`, mrn, name, dob, limit)
	if err != nil {
		return nil, fmt.Errorf("search patients: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Patient, error) {
		var p chartscan.Patient
		err := r.Scan(&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &p.Street, &p.City, &p.Postcode, &p.State, &p.Phone)
		return p, err
	})
}

// BatchSummary is a batch with its owner and its counts, for the batches list.
type BatchSummary struct {
	ID              string                       `json:"id"`
	Label           string                       `json:"label"`
	Urgent          bool                         `json:"urgent"`
	Source          string                       `json:"source,omitempty"` // chartscan.BatchIntake, BatchFolder; "" an upload
	CreatedAt       time.Time                    `json:"created_at"`
	OwnerID         int64                        `json:"owner_id,omitempty"`
	Owner           string                       `json:"owner,omitempty"`
	Documents       int                          `json:"documents"`
	DocumentsFailed int                          `json:"documents_failed"`
	Pages           int                          `json:"pages"`
	PagesByStatus   map[chartscan.PageStatus]int `json:"pages_by_status"`
}

// CreateOwnedBatch records a new batch uploaded by a user.
func (db *DB) CreateOwnedBatch(ctx context.Context, b chartscan.Batch, ownerID int64) (chartscan.Batch, error) {
	err := db.pool.QueryRow(ctx, `INSERT INTO batches (id, label, owner_id, urgent) VALUES ($1, $2, $3, $4) RETURNING created_at`,
		b.ID, b.Label, ownerID, b.Urgent).Scan(&b.CreatedAt)
	if err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	return b, nil
}

// Batches returns the newest batches with their counts; with ownerID, only that user's
// and the scanners' (intake and watched-folder batches, which are no user's).
func (db *DB) Batches(ctx context.Context, ownerID int64, limit int) ([]BatchSummary, error) {
	return db.batches(ctx, `($1 = 0 OR b.owner_id = $1 OR (b.owner_id IS NULL AND b.source <> ''))`, limit, ownerID)
}

// Batch returns one batch with its counts. A missing batch is ErrNotFound.
func (db *DB) Batch(ctx context.Context, id string) (BatchSummary, error) {
	bs, err := db.batches(ctx, `b.id::text = $1`, 1, id)
	if err != nil {
		return BatchSummary{}, err
	}
	if len(bs) == 0 {
		return BatchSummary{}, fmt.Errorf("batch %s: %w", id, ErrNotFound)
	}
	return bs[0], nil
}

func (db *DB) batches(ctx context.Context, where string, limit int, arg any) ([]BatchSummary, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows, err := db.pool.Query(ctx, `
		SELECT b.id::text, b.label, b.urgent, b.source, b.created_at, coalesce(b.owner_id, 0), coalesce(u.name, ''),
		       (SELECT count(*) FROM batch_documents bd WHERE bd.batch_id = b.id),
		       (SELECT count(*) FROM batch_documents bd JOIN documents d ON d.id = bd.document_id
		        WHERE bd.batch_id = b.id AND d.status = 'failed'),
		       coalesce((SELECT jsonb_object_agg(s.status, s.n) FROM (
		           SELECT p.status, count(*) AS n FROM batch_documents bd JOIN pages p ON p.document_id = bd.document_id
		           WHERE bd.batch_id = b.id GROUP BY p.status) s), '{}')
		FROM batches b LEFT JOIN users u ON u.id = b.owner_id
		WHERE `+where+` ORDER BY b.created_at DESC LIMIT `+fmt.Sprint(limit), arg)
	if err != nil {
		return nil, fmt.Errorf("batches: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BatchSummary, error) {
		var b BatchSummary
		err := r.Scan(&b.ID, &b.Label, &b.Urgent, &b.Source, &b.CreatedAt, &b.OwnerID, &b.Owner, &b.Documents, &b.DocumentsFailed, &b.PagesByStatus)
		for _, n := range b.PagesByStatus {
			b.Pages += n
		}
		return b, err
	})
}

// BatchDocument is a document as one batch uploaded it, with its page counts.
type BatchDocument struct {
	chartscan.Document
	PagesFinal int `json:"pages_final"`
	Review     int `json:"pages_review"`
	Failed     int `json:"pages_failed"` // pages that could not be read; a re-run reads them again
}

// BatchDocuments returns the documents a batch uploaded, under the names it gave them.
func (db *DB) BatchDocuments(ctx context.Context, batchID string) ([]BatchDocument, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT d.id::text, d.batch_id::text, d.sha256, bd.file_name, d.content_type, d.size, coalesce(d.page_count, 0),
		       d.status, d.reason, d.created_at,
		       (SELECT count(*) FROM pages p WHERE p.document_id = d.id AND p.status <> 'pending'),
		       (SELECT count(*) FROM pages p WHERE p.document_id = d.id AND p.status = 'review'),
		       (SELECT count(*) FROM pages p WHERE p.document_id = d.id AND p.status = 'failed')
		FROM batch_documents bd JOIN documents d ON d.id = bd.document_id
		WHERE bd.batch_id::text = $1 ORDER BY bd.file_name, d.id`, batchID)
	if err != nil {
		return nil, fmt.Errorf("batch documents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BatchDocument, error) {
		var d BatchDocument
		err := r.Scan(&d.ID, &d.BatchID, &d.SHA256, &d.FileName, &d.ContentType, &d.Size, &d.PageCount,
			&d.Status, &d.Reason, &d.CreatedAt, &d.PagesFinal, &d.Review, &d.Failed)
		return d, err
	})
}

// ResetDocument puts a failed document back to queued, forgetting its pages, so the
// pipeline runs it again from the split; its stored original and page images stay.
// A document with pages a reviewer decided is refused: re-running would undo their work.
// A finished document with failed pages has those pages put back (see rerunFailedPages).
func (db *DB) ResetDocument(ctx context.Context, id string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var status string
	err = tx.QueryRow(ctx, `SELECT status FROM documents WHERE id::text = $1 FOR UPDATE`, id).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return chartscan.Errorf(chartscan.ENotFound, "no such document")
	}
	if err != nil {
		return fmt.Errorf("reset document: %w", err)
	}
	if status == string(chartscan.DocDone) {
		return rerunFailedPages(ctx, tx, id)
	}
	if status != string(chartscan.DocFailed) {
		return chartscan.Errorf(chartscan.EConflict, "only a failed document, or one with failed pages, can be re-run")
	}
	var reviewed bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reviews WHERE document_id::text = $1)`, id).Scan(&reviewed); err != nil {
		return fmt.Errorf("reset document: %w", err)
	}
	if reviewed {
		return chartscan.Errorf(chartscan.EConflict, "a reviewer has decided pages of this document; it cannot be re-run")
	}
	for _, q := range []string{
		`DELETE FROM page_splits WHERE document_id::text = $1`,
		`DELETE FROM page_candidates WHERE document_id::text = $1`,
		`DELETE FROM page_identifiers WHERE document_id::text = $1`,
		`DELETE FROM pages WHERE document_id::text = $1`,
		`UPDATE documents SET status = 'queued', reason = '', page_count = NULL, updated_at = now() WHERE id::text = $1`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("reset document: %w", err)
		}
	}
	return tx.Commit(ctx)
}

// AuditQuery selects audit entries for the viewer: newest first, before BeforeID when set,
// with Actor, Action and Object (a prefix) filtering when set.
type AuditQuery struct {
	Actor    string
	Action   string
	Object   string
	BeforeID int64
	Limit    int
}

// AuditEntries returns audit entries for the viewer.
func (db *DB) AuditEntries(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	rows, err := db.pool.Query(ctx, `
		SELECT id, at, actor, action, object, outcome, detail FROM audit_log
		WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR object LIKE $3 || '%')
		  AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, q.Actor, q.Action, q.Object, q.BeforeID, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Object, &e.Outcome, &e.Detail)
		return e, err
	})
}

// DocumentUploadedBy reports whether one of the user's batches uploaded the document, or
// one of the scanners' (which every clerk sees).
func (db *DB) DocumentUploadedBy(ctx context.Context, documentID string, userID int64) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batch_documents bd JOIN batches b ON b.id = bd.batch_id
		WHERE bd.document_id::text = $1 AND (b.owner_id = $2 OR (b.owner_id IS NULL AND b.source <> '')))`, documentID, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("document owner: %w", err)
	}
	return ok, nil
}

// AuditHead returns the id and hash of the newest audit entry (0, "" when the log is
// empty). The chain proves nothing about entries cut from its end; recording the head
// elsewhere now and then does.
func (db *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var id int64
	var hash string
	err := db.pool.QueryRow(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit head: %w", err)
	}
	return id, hash, nil
}
