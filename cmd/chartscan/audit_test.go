package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/storage"
)

// The audit tests of issue 10, item 7 (and the audit claims of item 11): a keyed chain,
// refusals and the CLI's export in the log, and the component database roles.

// auditCount counts the entries of the test's audit log that match.
func (s *stack) auditCount(action, actor, objectPrefix, outcome string) int {
	s.t.Helper()
	var n int
	err := s.dbConn().QueryRow(context.Background(), `SELECT count(*) FROM audit_log
		WHERE action = $1 AND ($2 = '' OR actor = $2) AND object LIKE $3 || '%' AND ($4 = '' OR outcome = $4)`,
		action, actor, objectPrefix, outcome).Scan(&n)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// TestAuditRefusalsAndCLIExport: a 403 on any route, a 404 on a route naming a patient,
// page, document or batch, a decision refused as invalid (bad JSON, fields too long) and
// a clerk's decision refused by role each leave an audit entry naming the user and the
// object; so does the CLI's export. Before, only a decision's conflict and the web's
// export were recorded.
func TestAuditRefusalsAndCLIExport(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	s.addUser("clara", "clerk")
	s.addUser("colin", "clerk")
	s.addUser("rita", "reviewer")
	clara, colin, rita := apiClient(t, srv, s.token("clara")), apiClient(t, srv, s.token("colin")), apiClient(t, srv, s.token("rita"))
	batch := clara.uploadBatch(t, `{"label":"probes"}`, "../../testdata/charts/chart-003.pdf")
	_, body := clara.do("GET", "/api/v1/batches/"+batch, nil)
	var got struct{ Documents []struct{ ID string } }
	decodeJSON(t, body, &got)
	doc := got.Documents[0].ID
	missing := uuid.NewString()

	probes := []struct {
		who         *client
		method, url string
		body        any
		want        int
		action      string
		actor, obj  string
	}{
		{clara, "GET", "/api/v1/patients/365410984", nil, 403, "access.denied", "clara", "patient:365410984"},
		{clara, "GET", "/api/v1/pages/" + doc + "/1", nil, 403, "access.denied", "clara", "page:" + doc + "/1"},
		{clara, "POST", "/api/v1/review/" + doc + "/1", `{"version":1,"action":"not_in_empi"}`, 403, "access.denied", "clara", "page:" + doc + "/1"},
		{clara, "GET", "/api/v1/users", nil, 403, "access.denied", "clara", "route:/api/v1/users"},
		{colin, "GET", "/api/v1/documents/" + doc, nil, 404, "access.not_found", "colin", "document:" + doc},
		{colin, "GET", "/api/v1/batches/" + batch, nil, 404, "access.not_found", "colin", "batch:" + batch},
		{rita, "GET", "/api/v1/patients/999999999", nil, 404, "access.not_found", "rita", "patient:999999999"},
		{rita, "GET", "/api/v1/pages/" + missing + "/3", nil, 404, "access.not_found", "rita", "page:" + missing + "/3"},
		{rita, "GET", "/api/v1/pages/" + missing + "/3/image", nil, 404, "access.not_found", "rita", "page:" + missing + "/3"},
		{rita, "POST", "/api/v1/review/" + doc + "/1", `{"version":`, 400, "review.decide", "rita", "page:" + doc + "/1"},
		{rita, "POST", "/api/v1/review/" + doc + "/1", fmt.Sprintf(`{"version":1,"action":"confirm","fields":{"name":%q}}`, strings.Repeat("x", 300)), 400, "review.decide", "rita", "page:" + doc + "/1"},
	}
	for _, p := range probes {
		before := s.auditCount(p.action, p.actor, p.obj, "denied")
		if st, body := p.who.do(p.method, p.url, p.body); st != p.want {
			t.Errorf("%s %s as %s: %d, want %d\n%.300s", p.method, p.url, p.actor, st, p.want, body)
			continue
		}
		if after := s.auditCount(p.action, p.actor, p.obj, "denied"); after != before+1 {
			t.Errorf("%s %s as %s (%d): %d new %s entries for %s, want 1", p.method, p.url, p.actor, p.want, after-before, p.action, p.obj)
		}
	}

	// The CLI's export is recorded, before it writes anything.
	if n := s.auditCount("export", "", "batch:"+batch, "ok"); n != 0 {
		t.Fatalf("%d export entries before any export", n)
	}
	s.mustRun("export", "--format", "jsonl", "--batch", batch)
	if n := s.auditCount("export", "", "batch:"+batch, "ok"); n != 1 {
		t.Errorf("%d audit entries for the CLI's export, want 1", n)
	}
	out := s.mustRun("audit", "verify")
	if !strings.Contains(out, "intact") || !strings.Contains(out, "signed:") {
		t.Errorf("audit verify after the probes:\n%s", out)
	}
}

// oldEntryHash is the audit chain's hash before it was keyed: SHA-256 of the previous hash
// and the entry's fields, computable by anyone who can read the table.
func oldEntryHash(prev string, id int64, at time.Time, actor, action, object, outcome string, detail []byte) string {
	var d map[string]any
	json.Unmarshal(detail, &d)
	canon, _ := json.Marshal(d)
	fields, _ := json.Marshal([]any{prev, id, at.UTC().Format(time.RFC3339Nano), actor, action, object, outcome, json.RawMessage(canon)})
	sum := sha256.Sum256(fields)
	return hex.EncodeToString(sum[:])
}

// TestAuditVerifyCatchesRehashedForgery: someone with DATABASE_URL (every OCR host had it)
// turns a refused sign-in into a successful one and re-hashes the chain after it. On the
// unkeyed chain that verified; on the keyed one `audit verify` exits 1, and so it does
// with another key. A key shorter than 32 characters is refused, naming the variable.
func TestAuditVerifyCatchesRehashedForgery(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	s.addUser("rita", "reviewer")
	newClient(t, srv.url).login("rita", "wrong password!")
	s.token("rita")
	if out, errs, code := s.run("audit", "verify"); code != 0 {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errs)
	}
	conn := s.dbConn()
	ctx := context.Background()
	var denied int64
	if err := conn.QueryRow(ctx, `SELECT id FROM audit_log WHERE action = 'login' AND outcome = 'denied'`).Scan(&denied); err != nil {
		t.Fatal(err)
	}
	conn.Exec(ctx, `UPDATE audit_log SET outcome = 'ok' WHERE id = $1`, denied)
	rows, _ := conn.Query(ctx, `SELECT id, at, actor, action, object, outcome, detail FROM audit_log ORDER BY id`)
	type entry struct {
		id                             int64
		at                             time.Time
		actor, action, object, outcome string
		detail                         []byte
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entry, error) {
		var e entry
		err := r.Scan(&e.id, &e.at, &e.actor, &e.action, &e.object, &e.outcome, &e.detail)
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	prev := strings.Repeat("0", 64)
	for _, e := range es {
		h := oldEntryHash(prev, e.id, e.at, e.actor, e.action, e.object, e.outcome, e.detail)
		conn.Exec(ctx, `UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1`, e.id, prev, h)
		prev = h
	}
	out, errs, code := s.run("audit", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN at entry") {
		t.Errorf("audit verify after a re-hashed forgery: exit %d, want 1 naming the entry\n%s%s", code, out, errs)
	}

	s2 := newStack(t, "CHARTSCAN_AUDIT_KEY=another-audit-key-of-at-least-32-chars")
	s2.addUser("ann", "admin")
	s2.env = append(s2.env, "CHARTSCAN_AUDIT_KEY=yet-another-key-of-at-least-32-characters")
	if out, _, code := s2.run("audit", "verify"); code != 1 || !strings.Contains(out, "another key") {
		t.Errorf("audit verify with another key than the log's: exit %d\n%s", code, out)
	}
	s2.env = append(s2.env, "CHARTSCAN_AUDIT_KEY=short")
	if _, errs, code := s2.run("audit", "verify"); code == 0 || !strings.Contains(errs, "CHARTSCAN_AUDIT_KEY") {
		t.Errorf("a 5-character audit key: exit %d %q, want a refusal naming CHARTSCAN_AUDIT_KEY", code, errs)
	}
}

// TestDatabaseRolesRunThePipeline runs serve, a worker and the CLI each as its own
// PostgreSQL role (deploy/up.sh creates them; `chartscan migrate` as the owner grants
// them): a chart is uploaded, read, filed, exported and the audit chain verifies. The
// worker's role is refused on the audit log and the users, read or write — a stolen OCR
// host's credentials can neither forge the log nor take over an account.
func TestDatabaseRolesRunThePipeline(t *testing.T) {
	e := stacktest.New(t)
	roles := []string{
		"CHARTSCAN_SERVE_DATABASE_URL=" + e.RoleURL(storage.RoleServe),
		"CHARTSCAN_WORKER_DATABASE_URL=" + e.RoleURL(storage.RoleWorker),
		"CHARTSCAN_CLI_DATABASE_URL=" + e.RoleURL(storage.RoleCLI),
	}
	env := append(append(append([]string{}, os.Environ()...), e.Vars()...), "OMP_THREAD_LIMIT=1", "CHARTSCAN_LOG_LEVEL=debug")
	s := &stack{t: t, env: append(env, roles...), logs: &syncBuffer{}}
	s.mustRun("migrate") // as the owner (DATABASE_URL): the schema, then the grants
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	srv := s.startServe()
	s.addUser("clara", "clerk")
	clara := apiClient(t, srv, s.token("clara"))
	batch := clara.uploadBatch(t, `{"label":"roles"}`, "../../testdata/charts/chart-003.pdf")
	if byStatus := clara.waitBatchDone(batch, 5*time.Minute); byStatus["auto"] != 2 {
		t.Errorf("chart-003 under the component roles: %v, want both pages auto-filed", byStatus)
	}
	if rows := s.export("--batch", batch); len(rows) != 2 {
		t.Errorf("export as the CLI's role: %d rows, want 2", len(rows))
	}
	// The worker's role made the patient documents as it filed; the CLI's reads them.
	if out := s.mustRun("report", "--batch", batch); !regexp.MustCompile(`\n  ready +2  \(2 pages\)\n`).MatchString(out) {
		t.Errorf("report as the CLI's role:\n%s", out)
	}
	if out := s.mustRun("audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify as the CLI's role:\n%s", out)
	}

	ctx := context.Background()
	w, err := pgx.Connect(ctx, e.RoleURL(storage.RoleWorker))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	for _, sql := range []string{`SELECT count(*) FROM audit_log`, `DELETE FROM audit_log`,
		`INSERT INTO audit_log (actor, action, object, outcome, prev_hash, hash) VALUES ('w', 'x', 'x', 'ok', '', '')`,
		`SELECT password_hash FROM users`, `UPDATE users SET role = 'admin'`} {
		_, err := w.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("worker role: %s: %v, want permission denied", sql, err)
		}
	}
	if st, _ := clara.do("GET", "/api/v1/batches/"+batch, nil); st != http.StatusOK {
		t.Errorf("serve as its role: %d", st)
	}
}
