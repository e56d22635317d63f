package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Queues whose items a reviewer can skip.
const (
	QueueReview = "review"
	QueueQA     = "qa"
)

// Skip records that the session (by its token's hash) skipped a page in a queue; the
// skips last as long as the session. Skipping twice is skipping once.
func (db *DB) Skip(ctx context.Context, sessionHash, queue string, k PageKey) error {
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO review_skips (session_hash, queue, document_id, page_no) VALUES ($1, $2, $3, $4)
		ON CONFLICT (session_hash, queue, document_id, page_no) DO UPDATE SET skipped_at = now()`,
		sessionHash, queue, k.DocumentID, k.Page); err != nil {
		return fmt.Errorf("skip: %w", err)
	}
	return nil
}

// Skips returns the pages the session skipped in a queue, the last maxSkip of them,
// oldest first.
func (db *DB) Skips(ctx context.Context, sessionHash, queue string) ([]PageKey, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT document_id::text, page_no FROM (
			SELECT document_id, page_no, skipped_at FROM review_skips WHERE session_hash = $1 AND queue = $2
			ORDER BY skipped_at DESC LIMIT $3) s ORDER BY skipped_at`, sessionHash, queue, maxSkip)
	if err != nil {
		return nil, fmt.Errorf("skips: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowToStructByPos[PageKey])
	if err != nil {
		return nil, fmt.Errorf("skips: %w", err)
	}
	return keys, nil
}

// ClearSkips forgets the session's skips in a queue: its skipped items come back.
func (db *DB) ClearSkips(ctx context.Context, sessionHash, queue string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM review_skips WHERE session_hash = $1 AND queue = $2`, sessionHash, queue); err != nil {
		return fmt.Errorf("clear skips: %w", err)
	}
	return nil
}
