package storage

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/chartscan/chartscan"
)

// ErrNotFound is returned when a row asked for by its key does not exist.
var ErrNotFound = errors.New("not found")

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the PostgreSQL index: the system of record.
type DB struct {
	pool  *pgxpool.Pool
	audit atomic.Pointer[auditKey] // signs the audit log (SetAuditKey); nil: unkeyed
}

// Open connects to PostgreSQL at url and checks the connection.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// Trigram matches below this similarity are noise for a name and cost heap rechecks.
	cfg.ConnConfig.RuntimeParams["pg_trgm.similarity_threshold"] = "0.45"
	// A client on another host can vanish without closing its connections (its host
	// dies, its link is cut): no RST ever comes, as it does on loopback, and the server
	// would keep such a session, and the row locks of its open transaction, for the
	// kernel's default two hours of TCP keepalive. With these the server probes an idle
	// connection after 30 s and ends the session a minute after its client went silent,
	// so the other workers' tasks wait on its locks no longer. A URL's own (options or
	// the parameters themselves) wins.
	for k, v := range map[string]string{"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"} {
		if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	db := &DB{}
	// Audit entries are appended inside other methods' transactions: each connection
	// knows its DB, so the append finds the key (see keyOf).
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { auditConns.Store(c, db); return nil }
	cfg.BeforeClose = func(c *pgx.Conn) { auditConns.Delete(c) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	db.pool = pool
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return db, nil
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Migrate brings the schema up to date. It holds a Postgres advisory lock while it
// works, so a server and workers starting together migrate once. Run by the schema's
// owner, it then grants the component roles (RoleServe, …) what they need; run by one
// of those roles, it only checks that nothing is pending (ErrNotOwner if something is).
func (db *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	// Out of order: migrations written side by side (00003, 00004) must apply to a
	// database that already took the later one; each touches its own columns.
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", notOwner(err))
	}
	return db.grantRoles(ctx)
}

// CreateBatch records a new batch.
func (db *DB) CreateBatch(ctx context.Context, b chartscan.Batch) (chartscan.Batch, error) {
	err := db.pool.QueryRow(ctx,
		`INSERT INTO batches (id, label, urgent) VALUES ($1, $2, $3) RETURNING created_at`, b.ID, b.Label, b.Urgent).Scan(&b.CreatedAt)
	if err != nil {
		return b, fmt.Errorf("create batch: %w", err)
	}
	return b, nil
}

// AddDocument records that batch uploaded a file. If a document with the same SHA-256
// exists it is reused and created is false; either way the batch lists it.
func (db *DB) AddDocument(ctx context.Context, batchID string, d chartscan.Document) (doc chartscan.Document, created bool, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return d, false, err
	}
	defer tx.Rollback(ctx)
	var id string
	err = tx.QueryRow(ctx, `
		INSERT INTO documents (id, batch_id, sha256, file_name, content_type, size, status)
		VALUES ($1, $2, $3, $4, $5, $6, 'queued')
		ON CONFLICT (sha256) DO NOTHING RETURNING id`,
		d.ID, batchID, d.SHA256, d.FileName, d.ContentType, d.Size).Scan(&id)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, pgx.ErrNoRows):
	default:
		return d, false, fmt.Errorf("add document: %w", err)
	}
	if doc, err = documentBySHA(ctx, tx, d.SHA256); err != nil {
		return d, false, err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO batch_documents (batch_id, document_id, file_name) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, batchID, doc.ID, d.FileName); err != nil {
		return d, false, fmt.Errorf("add document to batch: %w", err)
	}
	return doc, created, tx.Commit(ctx)
}

// BatchFileNames returns the names of the files a batch already holds, for an ingest
// that resumes it.
func (db *DB) BatchFileNames(ctx context.Context, batchID string) (map[string]bool, error) {
	rows, err := db.pool.Query(ctx, `SELECT file_name FROM batch_documents WHERE batch_id::text = $1`, batchID)
	if err != nil {
		return nil, fmt.Errorf("batch files: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("batch files: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

const documentColumns = `id, batch_id, sha256, file_name, content_type, size, coalesce(page_count, 0), status, reason, created_at`

func scanDocument(row pgx.Row) (chartscan.Document, error) {
	var d chartscan.Document
	err := row.Scan(&d.ID, &d.BatchID, &d.SHA256, &d.FileName, &d.ContentType, &d.Size, &d.PageCount, &d.Status, &d.Reason, &d.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	return d, err
}

func documentBySHA(ctx context.Context, q pgx.Tx, sha string) (chartscan.Document, error) {
	d, err := scanDocument(q.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE sha256 = $1`, sha))
	if err != nil {
		return d, fmt.Errorf("document by content: %w", err)
	}
	return d, nil
}

// Document returns the document with the given id.
func (db *DB) Document(ctx context.Context, id string) (chartscan.Document, error) {
	d, err := scanDocument(db.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = $1`, id))
	if err != nil {
		return d, fmt.Errorf("document %s: %w", id, err)
	}
	return d, nil
}

// FailDocument marks a document failed with a reason a clerk understands. Pages already
// split out are kept (their images stay stored) but marked failed with the same reason,
// so the batch completes and nothing waits on them.
func (db *DB) FailDocument(ctx context.Context, id, reason string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE documents SET status = 'failed', reason = $2, updated_at = now() WHERE id = $1`, id, reason); err != nil {
		return fmt.Errorf("fail document: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE pages SET status = 'failed', reason = 'the document failed: ' || $2,
		       extracted_at = coalesce(extracted_at, now()), filed_at = now(), updated_at = now()
		WHERE document_id = $1 AND status = 'pending'`, id, reason); err != nil {
		return fmt.Errorf("fail document pages: %w", err)
	}
	return tx.Commit(ctx)
}

// SavePage records a page split out of a document. A page already recorded keeps its
// OCR and filing: the split may run again after a crash.
func (db *DB) SavePage(ctx context.Context, p chartscan.Page) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO pages (document_id, page_no, image_key, image_type, width, height, dpi)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (document_id, page_no) DO UPDATE SET
			image_key = EXCLUDED.image_key, image_type = EXCLUDED.image_type,
			width = EXCLUDED.width, height = EXCLUDED.height, dpi = EXCLUDED.dpi`,
		p.DocumentID, p.Number, p.ImageKey, p.ImageType, p.Width, p.Height, p.DPI)
	if err != nil {
		return fmt.Errorf("save page: %w", err)
	}
	return nil
}

// SetPageCount records how many pages a split document has and marks it processing.
func (db *DB) SetPageCount(ctx context.Context, id string, n int) error {
	_, err := db.pool.Exec(ctx, `
		UPDATE documents SET page_count = $2, status = 'processing', reason = '', updated_at = now()
		WHERE id = $1`, id, n)
	if err != nil {
		return fmt.Errorf("set page count: %w", err)
	}
	return nil
}

// Page returns a page with how far the pipeline got with it (ReadAt, ExtractedAt).
func (db *DB) Page(ctx context.Context, documentID string, n int) (chartscan.Page, error) {
	p := chartscan.Page{DocumentID: documentID, Number: n}
	var rotation *int
	var conf *float32
	var wordsKey *string
	var readAt, extractedAt *time.Time
	err := db.pool.QueryRow(ctx, `
		SELECT status, reason, image_key, image_type, width, height, dpi, rotation, ocr_confidence,
		       words_key, words IS NOT NULL, ocr_at, extracted_at
		FROM pages WHERE document_id = $1 AND page_no = $2`, documentID, n).Scan(
		&p.Status, &p.Reason, &p.ImageKey, &p.ImageType, &p.Width, &p.Height, &p.DPI, &rotation, &conf,
		&wordsKey, &p.HasWords, &readAt, &extractedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("page %s/%d: %w", documentID, n, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("page %s/%d: %w", documentID, n, err)
	}
	if rotation != nil {
		p.Rotation = *rotation
	}
	if conf != nil {
		p.OCRConfidence = float64(*conf)
	}
	if wordsKey != nil {
		p.WordsKey, p.HasWords = *wordsKey, true
	}
	if readAt != nil {
		p.ReadAt = *readAt
	}
	if extractedAt != nil {
		p.ExtractedAt = *extractedAt
	}
	return p, nil
}

// SaveOCR stores what OCR read on a page: its text (indexed for full-text search), read
// quality, orientation, barcodes and its words. When OCR read an upright copy
// of the page, that copy becomes the page image (its boxes fit it) and the original is
// kept as original_key.
func (db *DB) SaveOCR(ctx context.Context, documentID string, n int, r chartscan.Reading) error {
	barcodes, err := json.Marshal(r.Barcodes)
	if err != nil {
		return err
	}
	if r.Barcodes == nil {
		barcodes = []byte("[]")
	}
	var cover *string
	if r.CoverMRN != "" {
		cover = &r.CoverMRN
	}
	_, err = db.pool.Exec(ctx, `
		UPDATE pages SET text = $3, ocr_confidence = $4, low_confidence = $5, quality = $6, little_text = $7,
		       rotation = $8, rotation_confidence = $9, skew = $10, barcodes = $11, cover_mrn = $12, separator = $13,
		       words = $14, words_key = NULL, ocr_at = now(), updated_at = now(),
		       original_key = CASE WHEN $15 <> '' THEN coalesce(original_key, image_key) ELSE original_key END,
		       image_key = CASE WHEN $15 <> '' THEN $15 ELSE image_key END,
		       image_type = CASE WHEN $15 <> '' THEN $16 ELSE image_type END,
		       width = CASE WHEN $15 <> '' THEN $17 ELSE width END,
		       height = CASE WHEN $15 <> '' THEN $18 ELSE height END,
		       dpi = CASE WHEN $15 <> '' THEN $19 ELSE dpi END
		WHERE document_id = $1 AND page_no = $2`,
		documentID, n, r.Text, r.Confidence, r.LowConfidence, r.Quality, r.LittleText,
		r.Rotation, r.RotationConfidence, r.Skew, barcodes, cover, r.Separator,
		r.Words, r.ImageKey, r.ImageType, r.Width, r.Height, r.DPI)
	if err != nil {
		return fmt.Errorf("save ocr: %w", err)
	}
	return nil
}

// PageWords returns a page's OCR words as JSON, or — for a page read before they were
// kept in its row — the key of the object that holds them. Both are empty for a page
// not read.
func (db *DB) PageWords(ctx context.Context, documentID string, n int) (words []byte, key string, err error) {
	var k *string
	err = db.pool.QueryRow(ctx, `SELECT words, words_key FROM pages WHERE document_id = $1 AND page_no = $2`,
		documentID, n).Scan(&words, &k)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("page %s/%d: %w", documentID, n, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("words of page %s/%d: %w", documentID, n, err)
	}
	if k != nil {
		key = *k
	}
	return words, key, nil
}

// SaveIdentifiers replaces the identifiers of a page and marks it extracted. The document
// type and date of service, when found, are copied onto the page.
func (db *DB) SaveIdentifiers(ctx context.Context, documentID string, n int, ids []chartscan.Identifier) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM page_identifiers WHERE document_id = $1 AND page_no = $2`, documentID, n); err != nil {
		return fmt.Errorf("save identifiers: %w", err)
	}
	var docType, dos *string
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `
			INSERT INTO page_identifiers (document_id, page_no, kind, value, raw, confidence, x0, y0, x1, y1)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			documentID, n, string(id.Kind), id.Value, id.Raw, id.Confidence, id.Box.X0, id.Box.Y0, id.Box.X1, id.Box.Y1); err != nil {
			return fmt.Errorf("save identifiers: %w", err)
		}
		v := id.Value
		switch id.Kind {
		case chartscan.KindDocType:
			docType = &v
		case chartscan.KindDateOfService:
			dos = &v
		}
	}
	if _, err := tx.Exec(ctx, `
		UPDATE pages SET doc_type = $3, date_of_service = $4::date, extracted_at = now(), updated_at = now()
		WHERE document_id = $1 AND page_no = $2`, documentID, n, docType, dos); err != nil {
		return fmt.Errorf("save identifiers: %w", err)
	}
	return tx.Commit(ctx)
}

// FailPage marks a page failed with a reason and counts it as done for the pipeline, so
// its document still completes.
func (db *DB) FailPage(ctx context.Context, documentID string, n int, reason string) error {
	_, err := db.pool.Exec(ctx, `
		UPDATE pages SET status = 'failed', reason = $3, extracted_at = coalesce(extracted_at, now()),
		       filed_at = now(), updated_at = now()
		WHERE document_id = $1 AND page_no = $2`, documentID, n, reason)
	if err != nil {
		return fmt.Errorf("fail page: %w", err)
	}
	return nil
}

// CountCrash records that reading a page killed the reader's process and returns how
// often that has happened to the page since it was last (re-)queued.
func (db *DB) CountCrash(ctx context.Context, documentID string, n int) (int, error) {
	var crashes int
	err := db.pool.QueryRow(ctx, `
		UPDATE pages SET reader_crashes = reader_crashes + 1, updated_at = now()
		WHERE document_id = $1 AND page_no = $2 RETURNING reader_crashes`, documentID, n).Scan(&crashes)
	if err != nil {
		return 0, fmt.Errorf("count a reader crash: %w", err)
	}
	return crashes, nil
}

// MarkBlank marks a page blank: it is neither read further nor filed.
func (db *DB) MarkBlank(ctx context.Context, documentID string, n int) error {
	_, err := db.pool.Exec(ctx, `
		UPDATE pages SET status = 'blank', reason = 'blank page', extracted_at = coalesce(extracted_at, now()),
		       filed_at = now(), updated_at = now()
		WHERE document_id = $1 AND page_no = $2`, documentID, n)
	if err != nil {
		return fmt.Errorf("mark blank: %w", err)
	}
	return nil
}

// PagesDone counts a document's pages that finished extraction (or failed).
func (db *DB) PagesDone(ctx context.Context, documentID string) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pages WHERE document_id = $1 AND extracted_at IS NOT NULL`, documentID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count pages done: %w", err)
	}
	return n, nil
}
