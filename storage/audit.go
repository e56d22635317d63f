package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sync"
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

// MinAuditKeyLen is the shortest audit key SetAuditKey takes: 32 bytes, the size of the
// HMAC-SHA256 it keys.
const MinAuditKeyLen = 32

// ErrAuditKey is returned when the audit log holds keyed entries and no key is set to
// check them, or when a key is too short.
var ErrAuditKey = errors.New("audit key")

// auditLock serializes appends so each entry chains to the one before it.
const auditLock = 7_241_001

// genesis is the previous hash of the first entry.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// auditKey keys the audit chain. The entries' hashes are HMAC-SHA256 under it, so
// whoever can write to the database but does not hold the key (an OCR host, a stolen
// DATABASE_URL) can change or remove entries but cannot make the chain verify again.
type auditKey struct {
	secret []byte
	id     string // names the key without revealing it: stored with each entry it signs
}

// SetAuditKey keys the audit log: every entry appended from now on is signed with
// HMAC-SHA256 under key, and VerifyAudit checks keyed entries with it. Entries written
// before the log was keyed (plain SHA-256, key id "") stay as they are and are checked
// as such; the first keyed entry covers their last hash, so they cannot be changed
// without breaking it. Without a key, appends write plain SHA-256 entries (tests of
// this package only: chartscan's commands always set one).
func (db *DB) SetAuditKey(key []byte) error {
	if len(key) < MinAuditKeyLen {
		return fmt.Errorf("%w: want at least %d bytes, got %d", ErrAuditKey, MinAuditKeyLen, len(key))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("chartscan audit key id"))
	db.audit.Store(&auditKey{secret: append([]byte(nil), key...), id: hex.EncodeToString(m.Sum(nil))[:16]})
	return nil
}

// AuditKeyID returns the id of the key SetAuditKey set ("" for none): what `audit
// verify` prints so an operator can tell keys apart.
func (db *DB) AuditKeyID() string {
	if k := db.audit.Load(); k != nil {
		return k.id
	}
	return ""
}

// entryHash is the MAC (keyed) or SHA-256 (unkeyed, k nil) of the previous hash and the
// entry's fields in a fixed form; changing any stored field, or removing an entry,
// breaks every hash after it.
func entryHash(k *auditKey, prev string, e AuditEntry) (string, error) {
	detail, err := json.Marshal(e.Detail) // map keys are sorted: a canonical form
	if err != nil {
		return "", err
	}
	fields, err := json.Marshal([]any{prev, e.ID, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Object, e.Outcome, json.RawMessage(detail)})
	if err != nil {
		return "", err
	}
	var h hash.Hash
	if k == nil {
		h = sha256.New()
	} else {
		h = hmac.New(sha256.New, k.secret)
	}
	h.Write(fields)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// keyOf returns the audit key of the DB whose pool made conn (nil: unkeyed). Appends
// happen inside other methods' transactions, which hand over only the transaction.
func keyOf(conn *pgx.Conn) *auditKey {
	if db, ok := auditConns.Load(conn); ok {
		return db.(*DB).audit.Load()
	}
	return nil
}

// auditConns maps each pooled connection to its DB (Open's AfterConnect and BeforeClose).
var auditConns sync.Map

// appendAudit adds e to the audit log inside tx, signed with its DB's key.
func appendAudit(ctx context.Context, tx pgx.Tx, e AuditEntry) error {
	k := keyOf(tx.Conn())
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
	h, err := entryHash(k, prev, e)
	if err != nil {
		return err
	}
	keyID := ""
	if k != nil {
		keyID = k.id
	}
	detail, _ := json.Marshal(e.Detail)
	_, err = tx.Exec(ctx, `INSERT INTO audit_log (id, at, actor, action, object, outcome, detail, prev_hash, hash, key_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.ID, e.At, e.Actor, e.Action, e.Object, e.Outcome, detail, prev, h, keyID)
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

// AuditCheck is what walking the audit log found.
type AuditCheck struct {
	Entries int    // entries checked, the bad one included
	Unkeyed int    // entries from before the log was keyed: a plain SHA-256 chain
	Keyed   int    // entries signed with the key
	BadID   int64  // the first entry that does not verify; 0 when the chain holds
	Reason  string // why BadID does not verify
}

// VerifyAuditChain walks the audit log from the first entry. An entry verifies when its
// previous hash is the hash of the entry before it and its hash is the HMAC of its
// content under the key (keyed entries) or the SHA-256 of it (entries from before the
// key). An unkeyed entry after a keyed one, or one signed with another key, does not.
// A log holding keyed entries cannot be checked without the key: ErrAuditKey.
func (db *DB) VerifyAuditChain(ctx context.Context) (AuditCheck, error) {
	var c AuditCheck
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, object, outcome, detail, prev_hash, hash, key_id FROM audit_log ORDER BY id`)
	if err != nil {
		return c, fmt.Errorf("verify audit: %w", err)
	}
	defer rows.Close()
	key := db.audit.Load()
	prev := genesis
	bad := func(id int64, why string) (AuditCheck, error) {
		c.BadID, c.Reason = id, why
		return c, nil
	}
	for rows.Next() {
		var e AuditEntry
		var detail []byte
		var prevHash, hash, keyID string
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Object, &e.Outcome, &detail, &prevHash, &hash, &keyID); err != nil {
			return c, fmt.Errorf("verify audit: %w", err)
		}
		c.Entries++
		if err := json.Unmarshal(detail, &e.Detail); err != nil {
			return bad(e.ID, "its detail is not JSON")
		}
		if prevHash != prev {
			return bad(e.ID, "it does not follow the entry before it (changed or removed)")
		}
		var k *auditKey
		switch {
		case keyID == "" && c.Keyed > 0:
			return bad(e.ID, "it is unsigned, after signed entries")
		case keyID == "":
			c.Unkeyed++
		case key == nil:
			return c, fmt.Errorf("%w: the audit log is signed (key id %s); set CHARTSCAN_AUDIT_KEY to verify it", ErrAuditKey, keyID)
		case keyID != key.id:
			return bad(e.ID, fmt.Sprintf("it is signed with another key (id %s, this one is %s)", keyID, key.id))
		default:
			k = key
			c.Keyed++
		}
		want, err := entryHash(k, prev, e)
		if err != nil || !hmac.Equal([]byte(hash), []byte(want)) {
			return bad(e.ID, "its content does not match its hash (changed)")
		}
		prev = hash
	}
	return c, rows.Err()
}

// VerifyAudit walks the audit log (VerifyAuditChain) and returns the id of the first
// entry that does not verify (0 when the chain holds) and how many entries it checked.
func (db *DB) VerifyAudit(ctx context.Context) (badID int64, n int, err error) {
	c, err := db.VerifyAuditChain(ctx)
	return c.BadID, c.Entries, err
}
