package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chartscan/chartscan/internal/stacktest"
)

var testKey = []byte("test-audit-key-0123456789abcdef-0123")

func appendN(t *testing.T, db *DB, actor string, n int) {
	t.Helper()
	for i := range n {
		if err := db.Audit(context.Background(), AuditEntry{Actor: actor, Action: "page.view", Object: "page:x/1", Outcome: "ok",
			Detail: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
}

// rehash rewrites entry id as someone with the database but not the key would: changes
// its outcome and recomputes its SHA-256, and every hash after it, as the unkeyed chain
// computes them. On the old, unkeyed chain that made `audit verify` pass.
func rehash(t *testing.T, db *DB, id int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.pool.Exec(ctx, `UPDATE audit_log SET outcome = 'denied' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	rows, err := db.pool.Query(ctx, `SELECT id, at, actor, action, object, outcome, detail FROM audit_log ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var es []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var detail []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Object, &e.Outcome, &detail); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(detail, &e.Detail)
		es = append(es, e)
	}
	rows.Close()
	prev := genesis
	for _, e := range es {
		h, _ := entryHash(nil, prev, e)
		if _, err := db.pool.Exec(ctx, `UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1`, e.ID, prev, h); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// TestAuditChainIsKeyed: with a key, entries are HMACs a database writer cannot forge.
// Rewriting an entry and re-hashing the chain — what anyone with DATABASE_URL could do
// to the old SHA-256 chain, and which this test shows passing there — breaks the keyed
// one at that entry; so does relabelling entries as unkeyed, or checking with another
// key. Entries from before the key verify as a plain chain, sealed by the first keyed one.
func TestAuditChainIsKeyed(t *testing.T) {
	ctx := context.Background()

	// Before: unkeyed, a re-hashed forgery verifies.
	old := openDB(t)
	appendN(t, old, "rita", 3)
	var second int64
	old.pool.QueryRow(ctx, `SELECT id FROM audit_log ORDER BY id OFFSET 1 LIMIT 1`).Scan(&second)
	rehash(t, old, second)
	if c, err := old.VerifyAuditChain(ctx); err != nil || c.BadID != 0 {
		t.Fatalf("unkeyed chain re-hashed after a change: %+v %v; want it to verify (that is the weakness)", c, err)
	}

	db := openDB(t)
	appendN(t, db, "legacy", 2) // written before the key was set
	if err := db.SetAuditKey(testKey); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAuditKey([]byte("short")); !errors.Is(err, ErrAuditKey) {
		t.Errorf("SetAuditKey(5 bytes) = %v, want ErrAuditKey", err)
	}
	appendN(t, db, "rita", 3)
	c, err := db.VerifyAuditChain(ctx)
	if err != nil || c.BadID != 0 || c.Entries != 5 || c.Unkeyed != 2 || c.Keyed != 3 {
		t.Fatalf("VerifyAuditChain = %+v, %v; want 5 entries, 2 unkeyed then 3 keyed, intact", c, err)
	}
	var keyIDs []string
	rows, _ := db.pool.Query(ctx, `SELECT key_id FROM audit_log ORDER BY id`)
	keyIDs, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if len(keyIDs) != 5 || keyIDs[0] != "" || keyIDs[4] != db.AuditKeyID() || strings.Contains(string(testKey), keyIDs[4]) {
		t.Errorf("key ids %q, want two empty then the key's id (%s)", keyIDs, db.AuditKeyID())
	}

	// Verifying a keyed log needs the key.
	nokey, err := Open(ctx, dbURL(t, db))
	if err != nil {
		t.Fatal(err)
	}
	defer nokey.Close()
	if _, err := nokey.VerifyAuditChain(ctx); !errors.Is(err, ErrAuditKey) {
		t.Errorf("verify without the key: %v, want ErrAuditKey", err)
	}
	other, _ := Open(ctx, dbURL(t, db))
	defer other.Close()
	other.SetAuditKey([]byte("another-audit-key-0123456789abcdef-99"))
	if c, err := other.VerifyAuditChain(ctx); err != nil || c.BadID == 0 || !strings.Contains(c.Reason, "another key") {
		t.Errorf("verify with another key: %+v %v, want a break naming another key", c, err)
	}

	// Forgery: change the fourth entry (keyed) and re-hash everything.
	var fourth int64
	db.pool.QueryRow(ctx, `SELECT id FROM audit_log ORDER BY id OFFSET 3 LIMIT 1`).Scan(&fourth)
	var firstKeyed int64
	db.pool.QueryRow(ctx, `SELECT min(id) FROM audit_log WHERE key_id <> ''`).Scan(&firstKeyed)
	rehash(t, db, fourth) // key ids stay; every hash becomes the SHA-256 the writer can compute
	if c, err := db.VerifyAuditChain(ctx); err != nil || c.BadID != firstKeyed {
		t.Errorf("after a re-hashed change: %+v %v, want a break at the first keyed entry %d", c, err, firstKeyed)
	}
	// Relabel every entry as unkeyed too: an unsigned chain where signed entries were is
	// not the log chartscan wrote, but only the first keyed entry's MAC could tell; what
	// the key guarantees is that no keyed entry can be made up.
	if _, err := db.pool.Exec(ctx, `UPDATE audit_log SET key_id = '' WHERE id = $1`, fourth); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.VerifyAuditChain(ctx); c.BadID == 0 {
		t.Errorf("an entry relabelled as unkeyed among keyed ones verifies: %+v", c)
	}
}

// TestAuditLegacyEntriesSealed: changing an entry from before the key and re-hashing the
// unkeyed part of the chain breaks the first keyed entry, whose MAC covers their head.
func TestAuditLegacyEntriesSealed(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	appendN(t, db, "legacy", 3)
	db.SetAuditKey(testKey)
	appendN(t, db, "rita", 2)
	var legacy, firstKeyed int64
	db.pool.QueryRow(ctx, `SELECT id FROM audit_log ORDER BY id OFFSET 1 LIMIT 1`).Scan(&legacy)
	db.pool.QueryRow(ctx, `SELECT min(id) FROM audit_log WHERE key_id <> ''`).Scan(&firstKeyed)
	// Re-hash only the unkeyed prefix, leaving the keyed entries as they are.
	if _, err := db.pool.Exec(ctx, `UPDATE audit_log SET outcome = 'denied' WHERE id = $1`, legacy); err != nil {
		t.Fatal(err)
	}
	prev := genesis
	rows, _ := db.pool.Query(ctx, `SELECT id, at, actor, action, object, outcome, detail FROM audit_log WHERE key_id = '' ORDER BY id`)
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var detail []byte
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Object, &e.Outcome, &detail)
		json.Unmarshal(detail, &e.Detail)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		h, _ := entryHash(nil, prev, e)
		db.pool.Exec(ctx, `UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1`, e.ID, prev, h)
		prev = h
	}
	if c, err := db.VerifyAuditChain(ctx); err != nil || c.BadID != firstKeyed {
		t.Errorf("after a re-hashed change to a legacy entry: %+v %v, want a break at the first keyed entry %d", c, err, firstKeyed)
	}
}

func dbURL(t *testing.T, db *DB) string {
	t.Helper()
	return db.pool.Config().ConnString()
}

// TestDatabaseRolesGrants: after the owner migrates, the worker role is refused on the
// audit log, users, sessions and tokens (read and write), and may use the pipeline's
// tables; serve and the CLI may read and append the audit log but not change or delete
// an entry. A component role's Migrate with nothing pending succeeds without the owner.
func TestDatabaseRolesGrants(t *testing.T) {
	ctx := context.Background()
	env := stacktest.New(t)
	owner, err := Open(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	if err := owner.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	owner.SetAuditKey(testKey)
	if err := owner.Audit(ctx, AuditEntry{Actor: "ada", Action: "login", Object: "user:ada", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	connect := func(role string) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(ctx, env.RoleURL(role))
		if err != nil {
			t.Fatalf("connect as %s (deploy/up.sh creates the role): %v", role, err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	refused := func(c *pgx.Conn, who, sql string) {
		t.Helper()
		_, err := c.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: %s: err = %v, want permission denied", who, sql, err)
		}
	}
	allowed := func(c *pgx.Conn, who, sql string) {
		t.Helper()
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Errorf("%s: %s: %v, want it allowed", who, sql, err)
		}
	}

	w := connect(RoleWorker)
	for _, sql := range []string{
		`SELECT * FROM audit_log`,
		`INSERT INTO audit_log (actor, action, object, outcome, prev_hash, hash) VALUES ('x', 'x', 'x', 'ok', 'x', 'x')`,
		`UPDATE audit_log SET outcome = 'ok'`,
		`DELETE FROM audit_log`,
		`SELECT * FROM users`,
		`UPDATE users SET role = 'admin'`,
		`SELECT * FROM sessions`,
		`SELECT * FROM api_tokens`,
		`SELECT nextval('audit_log_id_seq')`,
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)`,
		`CREATE TABLE worker_was_here (x int)`,
	} {
		refused(w, "worker", sql)
	}
	for _, sql := range []string{`SELECT count(*) FROM pages`, `SELECT count(*) FROM documents`, `SELECT count(*) FROM patients`,
		`UPDATE pages SET status = status WHERE false`, `SELECT count(*) FROM goose_db_version`} {
		allowed(w, "worker", sql)
	}
	for _, role := range []string{RoleServe, RoleCLI} {
		c := connect(role)
		refused(c, role, `UPDATE audit_log SET outcome = 'denied'`)
		refused(c, role, `DELETE FROM audit_log`)
		refused(c, role, `TRUNCATE audit_log`)
		allowed(c, role, `SELECT count(*) FROM audit_log`)
		allowed(c, role, `SELECT count(*) FROM users`)
	}

	// Components open their own connections, migrate (nothing pending) and work.
	for _, role := range []string{RoleServe, RoleCLI, RoleWorker} {
		db, err := Open(ctx, env.RoleURL(role))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Errorf("Migrate as %s with nothing pending: %v", role, err)
		}
		if role != RoleWorker {
			db.SetAuditKey(testKey)
			if err := db.Audit(ctx, AuditEntry{Actor: role, Action: "test", Object: "x", Outcome: "ok"}); err != nil {
				t.Errorf("%s appends to the audit log: %v", role, err)
			}
		}
		db.Close()
	}
	if c, err := owner.VerifyAuditChain(ctx); err != nil || c.BadID != 0 || c.Keyed != 3 {
		t.Errorf("chain after the components' appends: %+v %v", c, err)
	}
}
