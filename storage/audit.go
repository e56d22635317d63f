package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one line of the audit log: who did what to which object, and how it went.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string // a user name, or "system:<component>"
	Action  string // e.g. "empi.merge", "page.view"
	Object  string // e.g. "patient:<mrn>", "page:<document>/<n>"
	Outcome string // "ok", "denied", "failed"
	Detail  map[string]any
}

// auditLock serializes appends so each entry chains to the one before it.
const auditLock = 7_241_001

// genesis is the previous hash of the first entry.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// entryHash is the SHA-256 of the previous hash and the entry's fields in a fixed form;
// changing any stored field, or removing an entry, breaks every hash after it.
func entryHash(prev string, e AuditEntry) (string, error) {
	detail, err := json.Marshal(e.Detail) // map keys are sorted: a canonical form
	if err != nil {
		return "", err
	}
	fields, err := json.Marshal([]any{prev, e.ID, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Object, e.Outcome, json.RawMessage(detail)})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(fields)
	return hex.EncodeToString(sum[:]), nil
}

// appendAudit adds e to the audit log inside tx.
func appendAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLock); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	prev := genesis
	err := tx.QueryRow(ctx, `SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("audit: %w", err)
	}
	if e.Detail == nil {
		e.Detail = map[string]any{}
	}
	if err := tx.QueryRow(ctx, `SELECT nextval('audit_log_id_seq'), date_trunc('microseconds', clock_timestamp())`).Scan(&e.ID, &e.At); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	h, err := entryHash(prev, e)
	if err != nil {
		return err
	}
	detail, _ := json.Marshal(e.Detail)
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (id, at, actor, action, object, outcome, detail, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, e.At, e.Actor, e.Action, e.Object, e.Outcome, detail, prev, h)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Audit appends one entry to the audit log.
func (db *DB) Audit(ctx context.Context, e AuditEntry) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := appendAudit(ctx, tx, e); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// VerifyAudit walks the audit log from the first entry and returns the id of the first
// entry whose hash does not match its content and predecessor (0 when the chain holds),
// and how many entries it checked.
func (db *DB) VerifyAudit(ctx context.Context) (badID int64, n int, err error) {
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, object, outcome, detail, prev_hash, hash FROM audit_log ORDER BY id`)
	if err != nil {
		return 0, 0, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	prev := genesis
	for rows.Next() {
		var e AuditEntry
		var detail []byte
		var prevHash, hash string
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Object, &e.Outcome, &detail, &prevHash, &hash); err != nil {
			return 0, n, err
		}
		n++
		if err := json.Unmarshal(detail, &e.Detail); err != nil {
			return e.ID, n, nil
		}
		want, err := entryHash(prev, e)
		if err != nil || prevHash != prev || hash != want {
			return e.ID, n, nil
		}
		prev = hash
	}
	return 0, n, rows.Err()
}
