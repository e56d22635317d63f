package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// DocumentBatch returns the batch that uploaded a document first and whether that batch
// is urgent: what the OCR queue is fair by.
func (db *DB) DocumentBatch(ctx context.Context, documentID string) (batchID string, urgent bool, err error) {
	err = db.pool.QueryRow(ctx, `SELECT b.id::text, b.urgent FROM documents d JOIN batches b ON b.id = d.batch_id
		WHERE d.id = $1`, documentID).Scan(&batchID, &urgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("document %s: %w", documentID, ErrNotFound)
	}
	if err != nil {
		return "", false, fmt.Errorf("document batch: %w", err)
	}
	return batchID, urgent, nil
}
