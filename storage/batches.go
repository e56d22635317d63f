package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// Progress counts a batch's documents and pages by status.
type Progress struct {
	Documents       int
	DocumentsFailed int
	DocumentsFinal  int // done or failed
	Pages           int // pages split out so far
	PagesByStatus   map[chartscan.PageStatus]int
	FailedReasons   []FailedDocument
	First, Last     time.Time // first upload and last page filed, for the rate
}

// FailedDocument is a document that could not be read, and why.
type FailedDocument struct {
	DocumentID string
	FileName   string
	Reason     string
}

// PagesFinal counts the pages that need no more work.
func (p Progress) PagesFinal() int {
	n := 0
	for s, c := range p.PagesByStatus {
		if s.Final() {
			n += c
		}
	}
	return n
}

// Done reports whether every document and page of the batch is final.
func (p Progress) Done() bool {
	return p.DocumentsFinal == p.Documents && p.PagesFinal() == p.Pages
}

// BatchProgress counts a batch's documents and pages by status.
func (db *DB) BatchProgress(ctx context.Context, batchID string) (Progress, error) {
	p := Progress{PagesByStatus: map[chartscan.PageStatus]int{}}
	var first, last *time.Time
	err := db.pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE d.status = 'failed'),
		       count(*) FILTER (WHERE d.status IN ('done', 'failed')), min(bd.added_at)
		FROM batch_documents bd JOIN documents d ON d.id = bd.document_id
		WHERE bd.batch_id = $1`, batchID).Scan(&p.Documents, &p.DocumentsFailed, &p.DocumentsFinal, &first)
	if err != nil {
		return p, fmt.Errorf("batch progress: %w", err)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT p.status, count(*), max(p.filed_at)
		FROM batch_documents bd JOIN pages p ON p.document_id = bd.document_id
		WHERE bd.batch_id = $1 GROUP BY p.status`, batchID)
	if err != nil {
		return p, fmt.Errorf("batch progress: %w", err)
	}
	for rows.Next() {
		var s string
		var n int
		var l *time.Time
		if err := rows.Scan(&s, &n, &l); err != nil {
			rows.Close()
			return p, err
		}
		p.PagesByStatus[chartscan.PageStatus(s)] = n
		p.Pages += n
		if l != nil && (last == nil || l.After(*last)) {
			last = l
		}
	}
	rows.Close()
	if first != nil {
		p.First = *first
	}
	if last != nil {
		p.Last = *last
	}
	if p.DocumentsFailed > 0 {
		rows, err := db.pool.Query(ctx, `
			SELECT d.id, bd.file_name, d.reason FROM batch_documents bd JOIN documents d ON d.id = bd.document_id
			WHERE bd.batch_id = $1 AND d.status = 'failed' ORDER BY bd.file_name`, batchID)
		if err != nil {
			return p, fmt.Errorf("batch progress: %w", err)
		}
		p.FailedReasons, err = pgx.CollectRows(rows, pgx.RowToStructByPos[FailedDocument])
		if err != nil {
			return p, fmt.Errorf("batch progress: %w", err)
		}
	}
	return p, nil
}

// ExportRow is one page in the export contract (DESIGN.md, "Interfaces").
type ExportRow struct {
	File          string   `json:"file"`
	DocumentID    string   `json:"document_id"`
	Page          int      `json:"page"`
	Status        string   `json:"status"`
	MRN           *string  `json:"mrn"`
	Score         *float64 `json:"score"`
	DocType       *string  `json:"doc_type"`
	DateOfService *string  `json:"date_of_service"`
	Rotation      *int     `json:"rotation"`
	// Part extends the contract: the 1-based part of the upload the page belongs to,
	// counting separator sheets before it, so a box scanned as one file with separator
	// sheets between documents exports as those documents.
	Part int `json:"part"`
}

// Export calls fn for every page of every document, each exactly once, in document and
// page order; with a batch id, for the documents that batch uploaded. A file that failed
// before it could be split has no pages; it is exported as one failed page 1, so every
// uploaded file is accounted for in the export.
func (db *DB) Export(ctx context.Context, batchID string, fn func(ExportRow) error) error {
	rows, err := db.pool.Query(ctx, `
		SELECT coalesce(bd.file_name, d.file_name), d.id::text, coalesce(p.page_no, 1),
		       coalesce(p.status, CASE WHEN d.status = 'failed' THEN 'failed' ELSE 'pending' END),
		       p.mrn, p.score, p.doc_type, to_char(p.date_of_service, 'YYYY-MM-DD'), p.rotation,
		       1 + coalesce(count(*) FILTER (WHERE p.separator) OVER (PARTITION BY d.id ORDER BY p.page_no
		                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
		FROM documents d
		LEFT JOIN LATERAL (SELECT file_name FROM batch_documents x
		                   WHERE x.document_id = d.id AND ($1 = '' OR x.batch_id::text = $1)
		                   ORDER BY x.added_at LIMIT 1) bd ON true
		LEFT JOIN pages p ON p.document_id = d.id
		WHERE $1 = '' OR EXISTS (SELECT 1 FROM batch_documents y WHERE y.document_id = d.id AND y.batch_id::text = $1)
		ORDER BY d.created_at, d.id, p.page_no`, batchID)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ExportRow
		if err := rows.Scan(&r.File, &r.DocumentID, &r.Page, &r.Status, &r.MRN, &r.Score, &r.DocType, &r.DateOfService, &r.Rotation, &r.Part); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Unfinished returns documents the pipeline has not finished, oldest first: queued ones
// (to split again) and processing ones with how many of their pages are done. After a
// crash or a lost Redis, the worker uses it to put lost tasks back.
func (db *DB) Unfinished(ctx context.Context, olderThan time.Duration) ([]chartscan.Document, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE status IN ('queued', 'processing') AND updated_at < now() - $1::interval
		ORDER BY created_at LIMIT 1000`, olderThan.String())
	if err != nil {
		return nil, fmt.Errorf("unfinished documents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (chartscan.Document, error) { return scanDocument(r) })
}

// PagesNotDone returns the numbers of a document's pages that are not through extraction,
// and whether each has been read by OCR.
func (db *DB) PagesNotDone(ctx context.Context, documentID string) (map[int]bool, error) {
	rows, err := db.pool.Query(ctx, `SELECT page_no, ocr_at IS NOT NULL FROM pages
		WHERE document_id = $1 AND extracted_at IS NULL`, documentID)
	if err != nil {
		return nil, fmt.Errorf("pages not done: %w", err)
	}
	defer rows.Close()
	out := map[int]bool{}
	for rows.Next() {
		var n int
		var ocr bool
		if err := rows.Scan(&n, &ocr); err != nil {
			return nil, err
		}
		out[n] = ocr
	}
	return out, rows.Err()
}
