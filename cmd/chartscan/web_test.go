package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The web tests drive `chartscan serve` over HTTP as a browser or a script would: users
// made with `chartscan users`, sessions from the sign-in form, tokens for the API.

// server is a running `chartscan serve`.
type server struct {
	url string
	p   *proc
}

// startServe starts `chartscan serve` on a free port; it is stopped when the test ends.
// Its log goes to the stack's logs with every other process's.
func (s *stack) startServe() *server {
	s.t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(append([]string{}, s.env...), "CHARTSCAN_HTTP_ADDR=127.0.0.1:0")
	cmd.Stderr = s.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: s.logs}
	s.t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		s.t.Fatalf("serve did not start: %v\n%s", err, s.logs)
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if !ok {
		s.t.Fatalf("serve printed %q, want its URL", line)
	}
	go io.Copy(io.Discard, out)
	return &server{url: u, p: p}
}

// addUser adds a user with `chartscan users add` and returns its password.
func (s *stack) addUser(name, role string) string {
	s.t.Helper()
	pw := "pw-" + name + "-0123456789"
	cmd := exec.Command(binary, "users", "add", name, "--role", role, "--password-stdin")
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(pw + "\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if out, err := cmd.Output(); err != nil {
		s.t.Fatalf("users add %s: %v\n%s%s", name, err, out, errb.String())
	}
	s.logs.Write(errb.Bytes())
	return pw
}

func (s *stack) token(name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.mustRun("users", "token", name, "--label", "test"))
}

// reviewEMPI writes the sample EMPI plus a near-twin of every patient in the sample
// charts: same family name and birth date, a given name one letter off, another MRN. The
// matcher never files a page automatically over a possible twin, so those pages go to
// review, each with its right patient and the twin as candidates.
func reviewEMPI(t *testing.T) string {
	t.Helper()
	truth := readTruth(t, "../../testdata/charts/truth.json")
	charted := map[string]bool{}
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			charted[p.MRN] = true
		}
	}
	f, err := os.Open("../../testdata/empi/sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for _, r := range rows[1:] {
		taken[r[0]] = true
	}
	for _, r := range rows[1:] {
		if !charted[r[0]] || len(r[2]) < 3 {
			continue
		}
		twin := slices.Clone(r)
		for n := 1; ; n++ {
			twin[0] = fmt.Sprintf("%09d", (mustAtoi(t, r[0])+n*7919)%1_000_000_000)
			if !taken[twin[0]] {
				break
			}
		}
		taken[twin[0]] = true
		last := "a"
		if strings.HasSuffix(strings.ToLower(r[2]), "a") {
			last = "e"
		}
		twin[2] = r[2][:len(r[2])-1] + last
		rows = append(rows, twin)
	}
	path := filepath.Join(t.TempDir(), "empi-review.csv")
	var b bytes.Buffer
	csv.NewWriter(&b).WriteAll(rows)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// client is one user's HTTP session: cookies kept by hand (the standard jar never sends
// Secure cookies over plain http, and the test server is plain http on loopback).
type client struct {
	t       *testing.T
	base    string
	token   string
	cookies map[string]string
	csrf    string
}

func newClient(t *testing.T, base string) *client {
	return &client{t: t, base: base, cookies: map[string]string{}}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout: 2 * time.Minute}

// do sends a request and returns the status and body. Bodies that are url.Values go as a
// form; []byte as JSON; anything else (an io.Reader) as is with contentType in the header.
func (c *client) do(method, path string, body any, header ...string) (int, string) {
	c.t.Helper()
	var r io.Reader
	var ctype string
	switch b := body.(type) {
	case nil:
	case url.Values:
		r, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case []byte:
		r, ctype = bytes.NewReader(b), "application/json"
	case string:
		r, ctype = strings.NewReader(b), "application/json"
	case readerBody:
		r = b.Reader
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if m := csrfMeta.FindStringSubmatch(string(b)); m != nil && m[1] != "" {
		c.csrf = html.UnescapeString(m[1])
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, string(b)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf" content="([^"]*)">`)

// login signs in through the form, as a browser does.
func (c *client) login(name, password string) int {
	c.t.Helper()
	c.do("GET", "/login", nil)
	status, _ := c.do("POST", "/login", url.Values{"csrf": {c.csrf}, "name": {name}, "password": {password}})
	return status
}

// signedIn returns a client with a session for name.
func signedIn(t *testing.T, srv *server, name, password string) *client {
	t.Helper()
	c := newClient(t, srv.url)
	if st := c.login(name, password); st != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: status %d, want 303", name, st)
	}
	c.csrf = "" // the sign-in form's token; the first page of the session brings its own
	return c
}

// pageCSRF loads a page of the UI and returns the session's CSRF token from it.
func (c *client) pageCSRF(path string) string {
	c.t.Helper()
	c.csrf = ""
	if st, body := c.do("GET", path, nil); st != http.StatusOK {
		c.t.Fatalf("GET %s: %d\n%s", path, st, body)
	}
	if c.csrf == "" {
		c.t.Fatalf("GET %s: no CSRF token on the page", path)
	}
	return c.csrf
}

func apiClient(t *testing.T, srv *server, token string) *client {
	c := newClient(t, srv.url)
	c.token = token
	return c
}

// decodeJSON decodes body into v, failing the test on a bad body.
func decodeJSON(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, body)
	}
}

// uploadBatch creates a batch over the API (body is its JSON) and uploads files into
// it, failing the test on any refusal; it returns the batch id.
func (c *client) uploadBatch(t *testing.T, body string, files ...string) string {
	t.Helper()
	st, resp := c.do("POST", "/api/v1/batches", body)
	if st != http.StatusCreated {
		t.Fatalf("create batch: %d %s", st, resp)
	}
	var batch struct{ ID string }
	decodeJSON(t, resp, &batch)
	if st, resp := c.uploadFiles(batch.ID, files...); st != http.StatusCreated {
		t.Fatalf("upload: %d %s", st, resp)
	}
	return batch.ID
}

// uploadFiles sends files to a batch as the upload page does: a size field before each.
func (c *client) uploadFiles(batchID string, paths ...string) (int, string) {
	c.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			c.t.Fatal(err)
		}
		mw.WriteField("size", strconv.Itoa(len(data)))
		fw, _ := mw.CreateFormFile("file", filepath.Base(p))
		fw.Write(data)
	}
	mw.Close()
	hdr := []string{"Content-Type", mw.FormDataContentType()}
	if c.csrf != "" {
		hdr = append(hdr, "X-CSRF-Token", c.csrf)
	}
	req := bytes.NewReader(b.Bytes())
	return c.do("POST", "/api/v1/batches/"+batchID+"/files", readerBody{req}, hdr...)
}

// readerBody passes a prepared body through client.do untouched.
type readerBody struct{ io.Reader }

// waitBatchDone polls the batch until every page is final.
func (c *client) waitBatchDone(batchID string, timeout time.Duration) map[string]int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, body := c.do("GET", "/api/v1/batches/"+batchID, nil)
		if st != http.StatusOK {
			c.t.Fatalf("GET batch: %d %s", st, body)
		}
		var v struct {
			Progress struct {
				Done          bool           `json:"done"`
				PagesByStatus map[string]int `json:"pages_by_status"`
			} `json:"progress"`
		}
		decodeJSON(c.t, body, &v)
		if v.Progress.Done {
			return v.Progress.PagesByStatus
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("batch not final after %v: %v", timeout, v.Progress.PagesByStatus)
		}
		time.Sleep(time.Second)
	}
}

// dbConn connects to the test's database, for what only a database can do (tampering).
func (s *stack) dbConn() *pgx.Conn {
	s.t.Helper()
	var dsn string
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			dsn = v
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestWebRoleBoundaries(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	pw1, pw2 := s.addUser("clara", "clerk"), s.addUser("colin", "clerk")
	pwr := s.addUser("rita", "reviewer")
	s.addUser("ada", "admin")
	clara, colin := apiClient(t, srv, s.token("clara")), apiClient(t, srv, s.token("colin"))
	rita, ada := apiClient(t, srv, s.token("rita")), apiClient(t, srv, s.token("ada"))

	st, body := clara.do("POST", "/api/v1/batches", `{"label":"clara's"}`)
	if st != http.StatusCreated {
		t.Fatalf("clerk creates a batch: %d %s", st, body)
	}
	var batch struct{ ID string }
	decodeJSON(t, body, &batch)
	docs := "../../testdata/charts/chart-003.pdf"
	if st, body := clara.uploadFiles(batch.ID, docs); st != http.StatusCreated {
		t.Fatalf("clerk uploads to her batch: %d %s", st, body)
	}
	_, body = clara.do("GET", "/api/v1/batches/"+batch.ID, nil)
	var got struct {
		Documents []struct{ ID string }
	}
	decodeJSON(t, body, &got)
	if len(got.Documents) != 1 {
		t.Fatalf("clerk's batch lists %d documents, want 1: %s", len(got.Documents), body)
	}
	doc := got.Documents[0].ID
	page := "/api/v1/pages/" + doc + "/1"

	anon := newClient(t, srv.url)
	claraUI, colinUI, ritaUI := signedIn(t, srv, "clara", pw1), signedIn(t, srv, "colin", pw2), signedIn(t, srv, "rita", pwr)
	tests := []struct {
		who    string
		c      *client
		method string
		path   string
		body   any
		want   int
	}{
		{"anonymous", anon, "GET", "/api/v1/health", nil, 200},
		{"anonymous", anon, "GET", "/api/v1/batches", nil, 401},
		{"anonymous", anon, "GET", "/api/v1/metrics", nil, 401},
		{"anonymous", anon, "GET", page, nil, 401},
		{"anonymous", anon, "GET", "/review", nil, 303},
		{"bad token", apiClient(t, srv, "cst_not-a-token"), "GET", "/api/v1/me", nil, 401},

		{"clerk, own batch", clara, "GET", "/api/v1/batches/" + batch.ID, nil, 200},
		{"clerk, own batch page", claraUI, "GET", "/batches/" + batch.ID, nil, 200},
		{"clerk, own document", clara, "GET", "/api/v1/documents/" + doc, nil, 200},
		{"clerk, another clerk's batch", colin, "GET", "/api/v1/batches/" + batch.ID, nil, 404},
		{"clerk, another clerk's batch page", colinUI, "GET", "/batches/" + batch.ID, nil, 404},
		{"clerk, another clerk's batch events", colin, "GET", "/api/v1/batches/" + batch.ID + "/events", nil, 404},
		{"clerk, another clerk's document", colin, "GET", "/api/v1/documents/" + doc, nil, 404},
		{"clerk, upload to another clerk's batch", colin, "POST", "/api/v1/batches/" + batch.ID + "/files?name=x.pdf", "x", 404},
		{"clerk, review queue page", claraUI, "GET", "/review", nil, 403},
		{"clerk, review queue API", clara, "GET", "/api/v1/review/next", nil, 403},
		{"clerk, page", clara, "GET", page, nil, 403},
		{"clerk, page image", clara, "GET", page + "/image", nil, 403},
		{"clerk, search", claraUI, "GET", "/search?q=report", nil, 403},
		{"clerk, patient chart", clara, "GET", "/api/v1/patients/365410984", nil, 403},
		{"clerk, users", claraUI, "GET", "/admin/users", nil, 403},
		{"clerk, export", clara, "GET", "/api/v1/export", nil, 403},

		{"reviewer, review queue page", ritaUI, "GET", "/review", nil, 200},
		// Admitted (the page is not split yet: no worker runs in this test), unlike the clerk.
		{"reviewer, page", rita, "GET", page, nil, 404},
		{"reviewer, search", rita, "GET", "/api/v1/search?q=report", nil, 200},
		{"reviewer, users page", ritaUI, "GET", "/admin/users", nil, 403},
		{"reviewer, users API", rita, "GET", "/api/v1/users", nil, 403},
		{"reviewer, add a user", rita, "POST", "/api/v1/users", `{"name":"eve","role":"admin","password":"0123456789ab"}`, 403},
		{"reviewer, change a role", rita, "PATCH", "/api/v1/users/1", `{"role":"admin"}`, 403},
		{"reviewer, audit log", rita, "GET", "/api/v1/audit", nil, 403},
		{"reviewer, EMPI import", rita, "POST", "/api/v1/empi/import?name=x.csv", "mrn,family\n", 403},
		{"reviewer, metrics", rita, "GET", "/api/v1/metrics", nil, 403},
		{"reviewer, upload page", ritaUI, "GET", "/upload", nil, 403},
		{"reviewer, create a batch", rita, "POST", "/api/v1/batches", `{}`, 403},
		{"reviewer, a clerk's batch", rita, "GET", "/api/v1/batches/" + batch.ID, nil, 403},

		{"admin, any batch", ada, "GET", "/api/v1/batches/" + batch.ID, nil, 200},
		{"admin, users", ada, "GET", "/api/v1/users", nil, 200},
		{"admin, metrics", ada, "GET", "/api/v1/metrics", nil, 200},
		{"admin, add a user", ada, "POST", "/api/v1/users", `{"name":"eve","role":"reviewer","password":"0123456789ab"}`, 201},
	}
	for _, tt := range tests {
		st, body := tt.c.do(tt.method, tt.path, tt.body)
		if st != tt.want {
			t.Errorf("%s: %s %s = %d, want %d\n%.300s", tt.who, tt.method, tt.path, st, tt.want, body)
		}
	}
	// A clerk's list holds only their own batches.
	_, body = colin.do("GET", "/api/v1/batches", nil)
	if strings.Contains(body, batch.ID) {
		t.Errorf("another clerk's batch list shows clara's batch:\n%s", body)
	}
	_, body = ada.do("GET", "/api/v1/audit?actor=rita&action=page.search", nil)
	if !strings.Contains(body, `"q":"report"`) {
		t.Errorf("the reviewer's search is not in the audit log:\n%s", body)
	}
}

func TestWebLoginRateLimited(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	pw := s.addUser("carl", "clerk")
	c := newClient(t, srv.url)
	for i := range 5 {
		if st := c.login("carl", "wrong-password-"+strconv.Itoa(i)); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: status %d, want 401", i, st)
		}
	}
	if st := c.login("carl", pw); st != http.StatusTooManyRequests {
		t.Errorf("the right password after 5 failures: status %d, want 429", st)
	}
	ada := s.addUser("ada", "admin")
	admin := apiClient(t, srv, s.token("ada"))
	_, body := admin.do("GET", "/api/v1/audit?action=login&actor=carl", nil)
	if n := strings.Count(body, `"outcome":"denied"`); n != 6 {
		t.Errorf("%d denied sign-ins in the audit log, want 6:\n%s", n, body)
	}
	// Another user from the same address still gets in.
	if st := newClient(t, srv.url).login("ada", ada); st != http.StatusSeeOther {
		t.Errorf("another user's sign-in: %d, want 303", st)
	}
}

func TestWebCSRFRejected(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	pw := s.addUser("ada", "admin")
	ada := signedIn(t, srv, "ada", pw)
	token := ada.pageCSRF("/admin/users")
	form := func(name, csrf string) url.Values {
		v := url.Values{"name": {name}, "role": {"reviewer"}, "password": {"0123456789ab"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	if st, _ := ada.do("POST", "/admin/users", form("nocsrf", "")); st != http.StatusForbidden {
		t.Errorf("form without a CSRF token: %d, want 403", st)
	}
	if st, _ := ada.do("POST", "/admin/users", form("badcsrf", token+"x")); st != http.StatusForbidden {
		t.Errorf("form with a wrong CSRF token: %d, want 403", st)
	}
	if st, _ := ada.do("POST", "/api/v1/users", `{"name":"apinocsrf","role":"clerk","password":"0123456789ab"}`); st != http.StatusForbidden {
		t.Errorf("API call with the session cookie and no X-CSRF-Token: %d, want 403", st)
	}
	if st, _ := ada.do("POST", "/admin/users", form("crosssite", token), "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"); st != http.StatusForbidden {
		t.Errorf("cross-site form post with a valid token: %d, want 403", st)
	}
	if st, loc := ada.do("POST", "/admin/users", form("withcsrf", token)); st != http.StatusSeeOther {
		t.Errorf("form with the CSRF token: %d (%s), want 303", st, loc)
	}
	if st, _ := ada.do("POST", "/api/v1/users", `{"name":"apiwithcsrf","role":"clerk","password":"0123456789ab"}`, "X-CSRF-Token", token); st != http.StatusCreated {
		t.Errorf("API call with the session cookie and X-CSRF-Token: %d, want 201", st)
	}
	// A sign-in form needs its own token too (login CSRF).
	anon := newClient(t, srv.url)
	if st, _ := anon.do("POST", "/login", url.Values{"name": {"ada"}, "password": {pw}}); st != http.StatusForbidden {
		t.Errorf("sign-in without the form's token: %d, want 403", st)
	}
	_, body := apiClient(t, srv, s.token("ada")).do("GET", "/api/v1/users", nil)
	for _, n := range []string{"nocsrf", "badcsrf", "apinocsrf", "crosssite"} {
		if strings.Contains(body, `"`+n+`"`) {
			t.Errorf("user %s was created by a request without a valid CSRF token", n)
		}
	}
	for _, n := range []string{"withcsrf", "apiwithcsrf"} {
		if !strings.Contains(body, `"`+n+`"`) {
			t.Errorf("user %s was not created", n)
		}
	}
}

// reviewItem is the review form as the page renders it.
type reviewItem struct {
	key, version, firstMRN string
}

var (
	itemRE    = regexp.MustCompile(`data-item="([^"]+)"`)
	versionRE = regexp.MustCompile(`name="version" value="(\d+)"`)
	confirmRE = regexp.MustCompile(`value="confirm:([^"]+)" data-key="1"`)
	qaMRNRE   = regexp.MustCompile(`name="mrn" value="([^"]+)"`)
)

func parseReviewItem(t *testing.T, body string) reviewItem {
	t.Helper()
	m, v := itemRE.FindStringSubmatch(body), versionRE.FindStringSubmatch(body)
	if m == nil || v == nil {
		t.Fatalf("no review item on the page:\n%.2000s", body)
	}
	it := reviewItem{key: m[1], version: v[1]}
	if c := confirmRE.FindStringSubmatch(body); c != nil {
		it.firstMRN = c[1]
	}
	return it
}

// TestWebReviewCollisionAndPHIFreeLogs runs a clerk's upload, two reviewers deciding the
// same item (the second is told who was first and changes nothing), the chart, search,
// page text and export; then reads every process's log for the patients' names and MRNs.
func TestWebReviewCollisionAndPHIFreeLogs(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", reviewEMPI(t))
	s.startWorker()
	srv := s.startServe()
	s.addUser("clara", "clerk")
	pw1, pw2 := s.addUser("rita", "reviewer"), s.addUser("rob", "reviewer")
	adaPW := s.addUser("ada", "admin")
	clara, admin := apiClient(t, srv, s.token("clara")), apiClient(t, srv, s.token("ada"))

	batch := clara.uploadBatch(t, `{"label":"collision"}`, "../../testdata/charts/chart-003.pdf")
	var body string
	if byStatus := clara.waitBatchDone(batch, 5*time.Minute); byStatus["review"] < 1 {
		t.Fatalf("no page went to review: %v", byStatus)
	}

	rita, rob := signedIn(t, srv, "rita", pw1), signedIn(t, srv, "rob", pw2)
	_, page1 := rita.do("GET", "/review", nil)
	_, page2 := rob.do("GET", "/review", nil)
	a, b := parseReviewItem(t, page1), parseReviewItem(t, page2)
	if a != b || a.firstMRN == "" {
		t.Fatalf("two reviewers opened %+v and %+v, want the same item with a candidate", a, b)
	}
	st, loc := rita.do("POST", "/review/"+a.key, url.Values{"csrf": {rita.csrf}, "version": {a.version}, "decision": {"confirm:" + a.firstMRN},
		"field_mrn": {a.firstMRN}, "orig_mrn": {a.firstMRN}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, "/review") {
		t.Fatalf("first decision: %d %s", st, loc)
	}
	st, body = rob.do("POST", "/review/"+b.key, url.Values{"csrf": {rob.csrf}, "version": {b.version}, "decision": {"not_in_empi"}})
	if st != http.StatusConflict || !strings.Contains(body, "already decided by rita") {
		t.Errorf("second decision: %d, want 409 saying \"already decided by rita\":\n%.3000s", st, body)
	}
	// The API says the same to a script.
	doc, n, _ := strings.Cut(a.key, "/")
	st, body = apiClient(t, srv, s.token("rob")).do("POST", "/api/v1/review/"+a.key, fmt.Sprintf(`{"version":%s,"action":"not_in_empi"}`, a.version))
	if st != http.StatusConflict || !strings.Contains(body, "already decided by rita") {
		t.Errorf("second decision over the API: %d %s", st, body)
	}
	_, body = admin.do("GET", "/api/v1/pages/"+doc+"/"+n, nil)
	var pg struct {
		Status, MRN, DecidedBy string
		Version                int
	}
	var raw map[string]any
	decodeJSON(t, body, &raw)
	pg.Status, _ = raw["status"].(string)
	pg.MRN, _ = raw["mrn"].(string)
	pg.DecidedBy, _ = raw["decided_by"].(string)
	if pg.Status != "confirmed" || pg.MRN != a.firstMRN || pg.DecidedBy != "rita" {
		t.Errorf("after the collision the page is %+v, want confirmed to %s by rita", pg, a.firstMRN)
	}
	_, body = admin.do("GET", "/api/v1/audit?action=review.decide", nil)
	if strings.Count(body, `"outcome":"ok"`) != 1 || strings.Count(body, `"outcome":"denied"`) != 2 {
		t.Errorf("audit log of the decisions: want 1 ok and 2 denied:\n%s", body)
	}

	// Everything else a reviewer and an admin do, so their logs are in the scan below.
	for _, path := range []string{"/patients/" + a.firstMRN, "/search?q=report", "/pages/" + a.key, "/patients?q=" + a.firstMRN, "/review"} {
		if st, body := rita.do("GET", path, nil); st != http.StatusOK {
			t.Errorf("GET %s: %d\n%.500s", path, st, body)
		}
	}
	for _, path := range []string{"/api/v1/pages/" + a.key + "/text", "/api/v1/pages/" + a.key + "/image", "/api/v1/export", "/api/v1/search?q=patient", "/api/v1/metrics"} {
		if st, body := admin.do("GET", path, nil); st != http.StatusOK {
			t.Errorf("GET %s: %d\n%.500s", path, st, body)
		}
	}
	newClient(t, srv.url).login("ada", "not the password")
	signedIn(t, srv, "ada", adaPW).do("GET", "/admin/audit", nil)

	checkNoPHIInLogs(t, s, admin, batch)
}

// checkNoPHIInLogs reads the names, MRNs and birth dates found on the batch's pages (and
// of the EMPI records they were filed to) and the pages' OCR text, and fails if any
// appears in the logs of the test's processes.
func checkNoPHIInLogs(t *testing.T, s *stack, admin *client, batchID string) {
	t.Helper()
	_, body := admin.do("GET", "/api/v1/export?batch="+batchID, nil)
	phi := map[string]bool{}
	var dates, textLines []string
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		var row exportRow
		decodeJSON(t, line, &row)
		_, pbody := admin.do("GET", fmt.Sprintf("/api/v1/pages/%s/%d", row.DocumentID, row.Page), nil)
		var pg struct {
			Identifiers []struct{ Kind, Value, Raw string }
			Candidates  []struct {
				MRN     string
				Patient struct {
					Family, Given string
					BirthDate     string `json:"birth_date"`
				}
			}
		}
		decodeJSON(t, pbody, &pg)
		for _, id := range pg.Identifiers {
			switch id.Kind {
			case "mrn":
				phi[id.Value] = true
			case "name":
				for _, w := range strings.FieldsFunc(id.Value, func(r rune) bool { return r == ',' || r == ' ' }) {
					phi[w] = true
				}
			case "dob":
				dates = append(dates, id.Value, strings.TrimSpace(id.Raw))
			}
		}
		for _, c := range pg.Candidates {
			phi[c.MRN], phi[c.Patient.Family], phi[c.Patient.Given] = true, true, true
			dates = append(dates, c.Patient.BirthDate)
		}
		// The OCR text: every line long enough to be the page's own words.
		_, text := admin.do("GET", fmt.Sprintf("/api/v1/pages/%s/%d/text", row.DocumentID, row.Page), nil)
		for _, l := range strings.Split(text, "\n") {
			if l = strings.Join(strings.Fields(l), " "); len(l) >= 12 {
				textLines = append(textLines, l)
			}
		}
	}
	truth := readTruth(t, "../../testdata/charts/truth.json")
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			phi[p.MRN] = true
		}
	}
	logs := s.logs.String()
	if len(logs) < 1000 {
		t.Fatalf("the logs are only %d bytes: is the run logging at all?", len(logs))
	}
	checked := 0
	for w := range phi {
		if len(w) < 3 {
			continue
		}
		checked++
		if re := regexp.MustCompile(`(?i)\b` + regexp.QuoteMeta(w) + `\b`); re.MatchString(logs) {
			loc := re.FindStringIndex(logs)
			t.Errorf("PHI %q appears in the logs: …%s…", w, logs[max(0, loc[0]-120):min(len(logs), loc[1]+40)])
		}
	}
	if checked < 4 {
		t.Errorf("only %d names and MRNs to look for; the scan proves nothing", checked)
	}
	// Birth dates as stored and as printed on the page (a log timestamp is of this year,
	// never a birth date's).
	nDates := 0
	for _, d := range dates {
		if len(d) < 6 {
			continue
		}
		nDates++
		if i := strings.Index(logs, d); i >= 0 {
			t.Errorf("birth date %q appears in the logs: …%s…", d, logs[max(0, i-120):min(len(logs), i+len(d)+40)])
		}
	}
	if nDates == 0 {
		t.Errorf("no birth date to look for; the scan proves nothing about them")
	}
	// OCR text: a line of a page, whitespace as the log might have it.
	for _, l := range textLines {
		re := regexp.MustCompile(`(?i)` + strings.Join(strings.Split(regexp.QuoteMeta(l), " "), `\s+`))
		if loc := re.FindStringIndex(logs); loc != nil {
			t.Errorf("OCR text %q appears in the logs: …%s…", l, logs[max(0, loc[0]-120):min(len(logs), loc[1]+40)])
		}
	}
	if len(textLines) < 3 {
		t.Errorf("only %d lines of OCR text to look for; the scan proves nothing about them", len(textLines))
	}
	t.Logf("scanned %d bytes of logs for %d names and MRNs, %d birth dates and %d lines of OCR text", len(logs), checked, nDates, len(textLines))
}

func TestAuditVerifyCatchesTamperedEntry(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	pw := s.addUser("ada", "admin")
	s.addUser("rita", "reviewer")
	ada := signedIn(t, srv, "ada", pw)
	ada.do("GET", "/admin/audit", nil)
	newClient(t, srv.url).login("rita", "wrong password!")
	s.token("ada") // an entry after the one tampered with below

	out, errs, code := s.run("audit", "verify")
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify on an untouched log: exit %d\n%s%s", code, out, errs)
	}
	conn := s.dbConn()
	ctx := context.Background()
	// Rewrite history: the failed sign-in becomes a success.
	var id int64
	if err := conn.QueryRow(ctx, `SELECT id FROM audit_log WHERE action = 'login' AND outcome = 'denied'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE audit_log SET outcome = 'ok' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	out, _, code = s.run("audit", "verify")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("BROKEN at entry %d", id)) {
		t.Errorf("audit verify after entry %d was changed: exit %d\n%s", id, code, out)
	}
	// The admin's viewer says so too.
	if _, body := ada.do("GET", "/admin/audit?verify=1", nil); !strings.Contains(body, fmt.Sprintf("broken at entry %d", id)) {
		t.Errorf("the audit viewer does not report the break at %d", id)
	}
	// Putting the value back restores the chain; removing an entry breaks it after the gap.
	// (Removing the newest entries cannot be seen from the chain alone: verify prints the
	// last hash so an operator can record it elsewhere.)
	conn.Exec(ctx, `UPDATE audit_log SET outcome = 'denied' WHERE id = $1`, id)
	if out, _, code := s.run("audit", "verify"); code != 0 {
		t.Errorf("audit verify after the value was restored: exit %d\n%s", code, out)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM audit_log WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	out, _, code = s.run("audit", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN at entry") {
		t.Errorf("audit verify after entry %d was removed: exit %d\n%s", id, code, out)
	}
}

// TestWebCoversheet prints a cover sheet from the UI as a clerk: a PDF for a patient in
// the EMPI, a clear 404 for an MRN that is not, and an audit entry for the print.
func TestWebCoversheet(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	srv := s.startServe()
	s.addUser("clara", "clerk")
	clara := apiClient(t, srv, s.token("clara"))
	f, _ := os.ReadFile("../../testdata/empi/sample.csv")
	row := strings.Split(strings.Split(string(f), "\n")[1], ",")
	mrn := row[0]
	// A clerk gives the name and birth date from the chart too (TestCoversheetHidesPatientsFromClerks in web).
	st, body := clara.do("GET", "/coversheet?mrn="+mrn+"&family="+url.QueryEscape(row[1])+"&dob="+row[3]+"&doc=lab", nil)
	if st != http.StatusOK || !strings.HasPrefix(body, "%PDF-") {
		t.Fatalf("cover sheet for an EMPI patient: %d, body starts %q", st, body[:min(len(body), 20)])
	}
	if st, _ := clara.do("GET", "/coversheet?mrn=000000000&family=x&dob=2000-01-01", nil); st != http.StatusNotFound {
		t.Errorf("cover sheet for an unknown MRN: %d, want 404", st)
	}
	conn := s.dbConn()
	defer conn.Close(context.Background())
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'coversheet.print' AND object = $1 AND actor = 'clara' AND outcome = 'ok'`, "patient:"+mrn).Scan(&n)
	if n != 1 {
		t.Errorf("%d audit entries for the print, want 1", n)
	}
}

// TestWebQualityCheck draws every automatically filed page for a quality check
// (CHARTSCAN_QA_RATE=1): one reviewer finds the first page right and a second one, who
// opened it too, is told so and changes nothing; the second page is found filed to the
// wrong patient and goes back to the review queue; the admin's report counts both.
func TestWebQualityCheck(t *testing.T) {
	s := newStack(t, "CHARTSCAN_QA_RATE=1")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	srv := s.startServe()
	s.addUser("clara", "clerk")
	pw1, pw2 := s.addUser("rita", "reviewer"), s.addUser("rob", "reviewer")
	adaPW := s.addUser("ada", "admin")
	clara, admin := apiClient(t, srv, s.token("clara")), apiClient(t, srv, s.token("ada"))
	batch := clara.uploadBatch(t, `{"label":"qa","urgent":true}`, "../../testdata/charts/chart-003.pdf")
	var body string
	if _, body := clara.do("GET", "/api/v1/batches/"+batch, nil); !strings.Contains(body, `"urgent":true`) {
		t.Errorf("batch created urgent reads back as %s", body)
	}
	if byStatus := clara.waitBatchDone(batch, 5*time.Minute); byStatus["auto"] != 2 {
		t.Fatalf("pages by status %v, want both auto-filed", byStatus)
	}

	rita, rob := signedIn(t, srv, "rita", pw1), signedIn(t, srv, "rob", pw2)
	_, qa := rita.do("GET", "/qa", nil)
	_, qaRob := rob.do("GET", "/qa", nil)
	first, firstMRN := itemRE.FindStringSubmatch(qa), qaMRNRE.FindStringSubmatch(qa)
	if first == nil || firstMRN == nil || !strings.Contains(qaRob, first[0]) {
		t.Fatalf("no quality check offered to both reviewers:\n%.2000s", qa)
	}
	st, loc := rita.do("POST", "/qa/"+first[1], url.Values{"csrf": {rita.csrf}, "mrn": {firstMRN[1]}, "outcome": {"correct"}})
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, "/qa") {
		t.Fatalf("quality check: %d %s", st, loc)
	}
	st, body = rob.do("POST", "/qa/"+first[1], url.Values{"csrf": {rob.csrf}, "mrn": {firstMRN[1]}, "outcome": {"wrong"}})
	if st != http.StatusConflict || !strings.Contains(body, "already checked by rita") {
		t.Errorf("second check of the same page: %d, want 409 saying \"already checked by rita\":\n%.2000s", st, body)
	}

	// The other page, over the API: found filed to the wrong patient.
	_, body = apiClient(t, srv, s.token("rob")).do("GET", "/api/v1/qa/next", nil)
	var next struct {
		Item *struct {
			DocumentID string `json:"document_id"`
			Page       int    `json:"page"`
			MRN        string `json:"mrn"`
		} `json:"item"`
	}
	decodeJSON(t, body, &next)
	if next.Item == nil || fmt.Sprintf("%s/%d", next.Item.DocumentID, next.Item.Page) == first[1] {
		t.Fatalf("next quality check over the API: %s", body)
	}
	second := fmt.Sprintf("%s/%d", next.Item.DocumentID, next.Item.Page)
	st, body = apiClient(t, srv, s.token("rob")).do("POST", "/api/v1/qa/"+second, fmt.Sprintf(`{"mrn":%q,"outcome":"wrong"}`, next.Item.MRN))
	if st != http.StatusNoContent {
		t.Fatalf("quality check over the API: %d %s", st, body)
	}
	if _, page := rita.do("GET", "/review", nil); parseReviewItem(t, page).key != second {
		t.Errorf("the page found misfiled is not in the review queue:\n%.1000s", page)
	}
	if _, page := rita.do("GET", "/qa", nil); !strings.Contains(page, `id="qa-empty"`) {
		t.Errorf("checked pages offered again:\n%.1000s", page)
	}

	_, body = admin.do("GET", "/api/v1/qa/report", nil)
	var rep struct {
		Sampled, Checked, Wrong, Waiting int
		Upper                            float64 `json:"error_rate_upper_95"`
	}
	decodeJSON(t, body, &rep)
	// One error in two checks: the one-sided 95% Clopper–Pearson bound is √0.95 ≈ 0.975.
	if rep.Sampled != 2 || rep.Checked != 2 || rep.Wrong != 1 || rep.Waiting != 0 || rep.Upper < 0.97 || rep.Upper > 0.98 {
		t.Errorf("QA report %s: want 2 drawn, 2 checked, 1 wrong, an upper bound of about 0.975", body)
	}
	if st, body := signedIn(t, srv, "ada", adaPW).do("GET", "/admin/qa", nil); st != http.StatusOK || !strings.Contains(body, `id="qa-report"`) {
		t.Errorf("GET /admin/qa: %d\n%.1000s", st, body)
	}
	// The queues' depth, for an autoscaler: every queue and state, all empty now.
	if _, body := admin.do("GET", "/api/v1/metrics", nil); !strings.Contains(body, `chartscan_queue_tasks{queue="ocr",state="pending"} 0`) ||
		!strings.Contains(body, `chartscan_queue_latency_seconds{queue="match"}`) || !strings.Contains(body, `chartscan_review_queue_pages 1`) {
		t.Errorf("metrics lack the queue depths:\n%.3000s", body)
	}
	if out := s.mustRun("qa", "report"); !strings.Contains(out, "drawn 2, checked 2, filed to the wrong patient 1, waiting 0") ||
		!strings.Contains(out, "below 97.47%") {
		t.Errorf("chartscan qa report:\n%s", out)
	}
	_, body = admin.do("GET", "/api/v1/audit?action=qa.check", nil)
	if strings.Count(body, `"outcome":"ok"`) != 2 || strings.Count(body, `"outcome":"denied"`) != 1 {
		t.Errorf("audit log of the checks: want 2 ok and 1 denied:\n%s", body)
	}
	checkNoPHIInLogs(t, s, admin, batch)
}

// apiPage is the part of GET /api/v1/pages/{doc}/{page} the tests read.
type apiPage struct {
	DocumentID string `json:"document_id"`
	Page       int    `json:"page"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	MRN        string `json:"mrn"`
	Version    int    `json:"version"`
	Candidates []struct {
		MRN string `json:"mrn"`
	} `json:"candidates"`
}

// TestWebDecisionFilesTheContinuationPages: a patient of chart-001 has a near-twin in
// this EMPI, so their pages go to review. When the reviewer files the page with the
// identifiers, the page without identifiers after it follows it once a worker has
// re-filed the document, and the decided page keeps the candidates its reviewer saw.
func TestWebDecisionFilesTheContinuationPages(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", reviewEMPI(t))
	s.startWorker()
	srv := s.startServe()
	s.addUser("clara", "clerk")
	s.addUser("rita", "reviewer")
	clara, rita := apiClient(t, srv, s.token("clara")), apiClient(t, srv, s.token("rita"))
	clara.waitBatchDone(clara.uploadBatch(t, `{"label":"continuations"}`, "../../testdata/charts/chart-001.pdf"), 5*time.Minute)
	// chart-001: pages 1 and 3 carry identifiers, 2 and 4 continue them.
	truth := readTruth(t, "../../testdata/charts/truth.json").Documents[0].Pages
	_, body := rita.do("GET", "/api/v1/review/next", nil)
	var next struct{ Item *apiPage }
	decodeJSON(t, body, &next)
	it := next.Item
	if it == nil || (it.Page != 1 && it.Page != 3) || len(it.Candidates) < 2 {
		t.Fatalf("first review item: %s; want page 1 or 3 with its twin among the candidates", body)
	}
	page := func(n int) apiPage {
		t.Helper()
		_, body := rita.do("GET", fmt.Sprintf("/api/v1/pages/%s/%d", it.DocumentID, n), nil)
		var p apiPage
		decodeJSON(t, body, &p)
		return p
	}
	if p := page(it.Page + 1); p.Status != "review" {
		t.Fatalf("page %d before the decision: %+v, want review with the page it continues", it.Page+1, p)
	}
	want := truth[it.Page-1].MRN
	if st, body := rita.do("POST", fmt.Sprintf("/api/v1/review/%s/%d", it.DocumentID, it.Page),
		fmt.Sprintf(`{"version":%d,"action":"confirm","mrn":%q}`, it.Version, want)); st != http.StatusOK {
		t.Fatalf("confirm page %d: %d %s", it.Page, st, body)
	}
	// The decision queues the document's re-filing for a worker (document:refile): the
	// continuation follows within moments, not in the request.
	p := page(it.Page + 1)
	for deadline := time.Now().Add(time.Minute); p.Status != "auto" && time.Now().Before(deadline); p = page(it.Page + 1) {
		time.Sleep(200 * time.Millisecond)
	}
	if p.Status != "auto" || p.MRN != want || p.Reason != "continuation" {
		t.Errorf("page %d after page %d was confirmed: %+v, want auto to %s as its continuation", it.Page+1, it.Page, p, want)
	}
	if p := page(it.Page); p.Status != "confirmed" || p.MRN != want || len(p.Candidates) < 2 {
		t.Errorf("page %d after its own re-filing: %+v, want confirmed to %s with its candidates", it.Page, p, want)
	}
	for n := 1; n <= 4; n++ {
		if p := page(n); p.Status == "auto" && p.MRN != truth[n-1].MRN {
			t.Errorf("page %d auto-filed to %s, truth %s", n, p.MRN, truth[n-1].MRN)
		}
	}
}
