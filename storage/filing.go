package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// reviewerKept is true of a page whose filing a reviewer decided and a re-filing keeps:
// confirmed to a patient, or found not in the EMPI (by its latest review: an undo ends it).
const reviewerKept = `(p.status = 'confirmed' OR (p.status = 'unmatched' AND coalesce((
	SELECT r.action FROM reviews r WHERE r.document_id = p.document_id AND r.page_no = p.page_no ORDER BY r.id DESC LIMIT 1), '') = 'not_in_empi'))`

// MatchPages returns the pages of a document in order, with their identifiers, the
// splits reviewers made and the filings they decided.
func (db *DB) MatchPages(ctx context.Context, documentID string) ([]chartscan.Page, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT p.page_no, p.status, coalesce(p.quality, 100), p.little_text, coalesce(p.cover_mrn, ''), p.separator,
		       EXISTS (SELECT 1 FROM page_splits s WHERE s.document_id = p.document_id AND s.page_no = p.page_no),
		       coalesce(p.mrn, ''), `+reviewerKept+`,
		       i.kind, i.value, i.raw, i.confidence, i.x0, i.y0, i.x1, i.y1
		FROM pages p LEFT JOIN page_identifiers i USING (document_id, page_no)
		WHERE p.document_id = $1 ORDER BY p.page_no, i.kind`, documentID)
	if err != nil {
		return nil, fmt.Errorf("match pages: %w", err)
	}
	defer rows.Close()
	var out []chartscan.Page
	for rows.Next() {
		var n int
		var status, cover string
		var quality float32
		var little, sep, split, decided bool
		var mrn string
		var kind, value, raw *string
		var conf *float32
		var x0, y0, x1, y1 *int
		if err := rows.Scan(&n, &status, &quality, &little, &cover, &sep, &split, &mrn, &decided, &kind, &value, &raw, &conf, &x0, &y0, &x1, &y1); err != nil {
			return nil, fmt.Errorf("match pages: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Number != n {
			out = append(out, chartscan.Page{DocumentID: documentID, Number: n, Status: chartscan.PageStatus(status),
				Quality: float64(quality), LittleText: little, CoverMRN: cover, Separator: sep, SplitBefore: split,
				MRN: mrn, Decided: decided})
		}
		if kind != nil {
			p := &out[len(out)-1]
			p.Identifiers = append(p.Identifiers, chartscan.Identifier{
				Kind: chartscan.IdentifierKind(*kind), Value: *value, Raw: *raw, Confidence: float64(*conf),
				Box: chartscan.Box{X0: *x0, Y0: *y0, X1: *x1, Y1: *y1},
			})
		}
	}
	return out, rows.Err()
}

// FilingGeneration returns a document's filing generation: the count of human decisions
// on its pages (review decisions, splits, quality checks that found a misfile, re-runs).
// A filing reads it before the pages it decides from and saves with SaveFilingsAt.
func (db *DB) FilingGeneration(ctx context.Context, documentID string) (int64, error) {
	var g int64
	err := db.pool.QueryRow(ctx, `SELECT filing_generation FROM documents WHERE id = $1`, documentID).Scan(&g)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("document %s: %w", documentID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("filing generation: %w", err)
	}
	return g, nil
}

// SaveFilings saves filings at whatever generation the document is at now. It checks
// nothing, so it is for filings computed from no stored state (tests, set-up); a filing
// computed from the pages is saved with SaveFilingsAt.
func (db *DB) SaveFilings(ctx context.Context, documentID string, filings map[int]chartscan.Filing) error {
	g, err := db.FilingGeneration(ctx, documentID)
	if err != nil {
		return err
	}
	return db.SaveFilingsAt(ctx, documentID, g, filings)
}

// SaveFilingsAt stores the filing of each page (keyed by page number) with its ranked
// candidates and their evidence, and marks the document done, in one transaction — if
// the document's filing generation is still generation. Otherwise a reviewer decided
// (or split, or re-ran) since the filing was computed: it changes nothing and returns an
// EConflict, and the caller computes the filing again from the pages as they are now.
// Pages a reviewer decided (confirmed, or not in the EMPI), and failed, blank or
// separator pages, keep their status.
// An automatic filing with QACheck is drawn for a quality check; filing a page again
// withdraws its unchecked draw (a check already made stays, as history). The document's
// patient documents are brought in line in the same transaction.
func (db *DB) SaveFilingsAt(ctx context.Context, documentID string, generation int64, filings map[int]chartscan.Filing) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	defer tx.Rollback(ctx)
	// Every page of the document is locked, in page order as a split locks them, so no
	// decision lands between the generation check and the writes; a decision under way
	// finishes first and its bump is seen. The pages a reviewer decided keep their
	// filing, the candidates the reviewer saw and their draw.
	rows, err := tx.Query(ctx, `
		SELECT p.page_no, p.status IN ('pending', 'auto', 'review', 'unmatched') AND NOT `+reviewerKept+`
		FROM pages p WHERE p.document_id = $1 ORDER BY p.page_no FOR UPDATE`, documentID)
	if err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	fileable := map[int]bool{}
	var n int
	var ok bool
	if _, err := pgx.ForEachRow(rows, []any{&n, &ok}, func() error {
		fileable[n] = ok
		return nil
	}); err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	var now int64
	err = tx.QueryRow(ctx, `SELECT filing_generation FROM documents WHERE id = $1`, documentID).Scan(&now)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("document %s: %w", documentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	if now != generation {
		return chartscan.Errorf(chartscan.EConflict, "the document's filing changed while it was being computed (generation %d, now %d); nothing was saved", generation, now)
	}
	batch := &pgx.Batch{}
	for _, n := range slices.Sorted(maps.Keys(filings)) {
		if !fileable[n] {
			continue
		}
		f := filings[n]
		var mrn *string
		if f.MRN != "" {
			mrn = &f.MRN
		}
		batch.Queue(`
			UPDATE pages SET status = $3, mrn = $4, score = $5, reason = $6, filed_at = now(), updated_at = now()
			WHERE document_id = $1 AND page_no = $2`,
			documentID, n, string(f.Status), mrn, f.Score, f.Reason)
		batch.Queue(`DELETE FROM page_candidates WHERE document_id = $1 AND page_no = $2`, documentID, n)
		batch.Queue(`DELETE FROM qa_checks WHERE document_id = $1 AND page_no = $2 AND outcome IS NULL`, documentID, n)
		if f.QACheck && f.Status == chartscan.StatusAuto {
			batch.Queue(`INSERT INTO qa_checks (document_id, page_no, mrn)
				SELECT document_id, page_no, mrn FROM pages
				WHERE document_id = $1 AND page_no = $2 AND status = 'auto' AND mrn IS NOT NULL
				ON CONFLICT DO NOTHING`, documentID, n)
		}
		for rank, c := range f.Candidates {
			ev, err := json.Marshal(c.Evidence)
			if err != nil {
				return err
			}
			batch.Queue(`INSERT INTO page_candidates (document_id, page_no, rank, mrn, score, evidence)
				VALUES ($1, $2, $3, $4, $5, $6)`, documentID, n, rank+1, c.MRN, c.Score, ev)
		}
	}
	batch.Queue(`UPDATE documents SET status = 'done', updated_at = now() WHERE id = $1 AND status <> 'failed'`, documentID)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	if err := refreshPatientDocuments(ctx, tx, documentID); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("save filings: %w", err)
	}
	return nil
}

// rerunFailedPages puts the failed pages of a finished document back to pending, and the
// document back to processing, in tx (which it commits): the pipeline reads them again
// from where they stopped (OCR, or extraction if they were read) and files the document
// again. The other pages, and what reviewers decided, stay. Each page's version is
// bumped, so a re-filing computed before the re-run saves nothing.
func rerunFailedPages(ctx context.Context, tx pgx.Tx, documentID string) error {
	tag, err := tx.Exec(ctx, `
		UPDATE pages SET status = 'pending', reason = '', mrn = NULL, score = NULL, extracted_at = NULL, filed_at = NULL,
		       reader_crashes = 0, version = version + 1, updated_at = now()
		WHERE document_id::text = $1 AND status = 'failed'`, documentID)
	if err != nil {
		return fmt.Errorf("re-run failed pages: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return chartscan.Errorf(chartscan.EConflict, "only a failed document, or one with failed pages, can be re-run")
	}
	if _, err := tx.Exec(ctx, `UPDATE documents SET status = 'processing', reason = '', updated_at = now() WHERE id::text = $1`, documentID); err != nil {
		return fmt.Errorf("re-run failed pages: %w", err)
	}
	if err := refreshPatientDocuments(ctx, tx, documentID); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// FailedPage is a page that could not be read, and why.
type FailedPage struct {
	DocumentID string
	FileName   string
	Page       int
	Reason     string
}

// FailedPages returns the failed pages of a batch's finished documents (a failed
// document's are in Progress.FailedReasons), in file and page order.
func (db *DB) FailedPages(ctx context.Context, batchID string) ([]FailedPage, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT d.id::text, bd.file_name, p.page_no, p.reason
		FROM batch_documents bd JOIN documents d ON d.id = bd.document_id JOIN pages p ON p.document_id = d.id
		WHERE bd.batch_id::text = $1 AND d.status <> 'failed' AND p.status = 'failed'
		ORDER BY bd.file_name, p.page_no`, batchID)
	if err != nil {
		return nil, fmt.Errorf("failed pages: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[FailedPage])
	if err != nil {
		return nil, fmt.Errorf("failed pages: %w", err)
	}
	return out, nil
}

// PageCandidates returns the ranked candidates stored with a page's filing.
func (db *DB) PageCandidates(ctx context.Context, documentID string, n int) ([]chartscan.Candidate, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT mrn, score, evidence FROM page_candidates WHERE document_id = $1 AND page_no = $2 ORDER BY rank`, documentID, n)
	if err != nil {
		return nil, fmt.Errorf("page candidates: %w", err)
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
