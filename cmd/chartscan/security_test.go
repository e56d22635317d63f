package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The security tests of issue 10 (items 5 and 6) against the real server and stack:
// token expiry and revocation, idle sessions, event streams that end with their
// session, and the sign-in redirect.

func TestLoadConfigSessionIdle(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || c.SessionIdle != 15*time.Minute {
		t.Errorf("default SessionIdle = %v, %v; want 15m", c.SessionIdle, err)
	}
	c, err = loadConfig(func(k string) string {
		if k == "CHARTSCAN_SESSION_IDLE" {
			return "30m"
		}
		return ""
	})
	if err != nil || c.SessionIdle != 30*time.Minute {
		t.Errorf("CHARTSCAN_SESSION_IDLE=30m: %v, %v", c.SessionIdle, err)
	}
	for _, bad := range []string{"0", "15", "500ms", "13h", "soon"} {
		_, err := loadConfig(func(k string) string {
			if k == "CHARTSCAN_SESSION_IDLE" {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "CHARTSCAN_SESSION_IDLE") {
			t.Errorf("CHARTSCAN_SESSION_IDLE=%s: err = %v, want one naming the variable", bad, err)
		}
	}
}

// newToken makes a token with `users token` and returns it and the id it names on stderr.
func (s *stack) newToken(name string, args ...string) (tok string, id int) {
	s.t.Helper()
	out, errs, code := s.run(append([]string{"users", "token", name, "--label", "test"}, args...)...)
	if code != 0 {
		s.t.Fatalf("users token %s: exit %d\n%s", name, code, errs)
	}
	var who, until string
	if _, err := fmt.Sscanf(errs, "token %d for %s valid until %s", &id, &who, &until); err != nil {
		s.t.Fatalf("users token printed %q on stderr, want its id", errs)
	}
	return strings.TrimSpace(out), id
}

// TestWebTokensExpireAndAreRevoked: a token lasts its days (90 unless --days), and ends
// sooner when revoked from the CLI or the API, when it expires, or when its user's
// password changes — which also ends their sessions. Before, a token lasted for ever and
// survived all of these.
func TestWebTokensExpireAndAreRevoked(t *testing.T) {
	s := newStack(t)
	srv := s.startServe()
	s.addUser("ada", "admin")
	pwAnn := s.addUser("ann", "reviewer")
	admin := apiClient(t, srv, s.token("ada"))
	works := func(tok string) int {
		st, _ := apiClient(t, srv, tok).do("GET", "/api/v1/me", nil)
		return st
	}

	if _, errs, code := s.run("users", "token", "ann", "--days", "0"); code == 0 || !strings.Contains(errs, "--days") {
		t.Errorf("users token --days 0: exit %d %q, want a refusal naming --days", code, errs)
	}
	tok1, id1 := s.newToken("ann")
	if st := works(tok1); st != http.StatusOK {
		t.Fatalf("a new token: %d, want 200", st)
	}
	_, body := admin.do("GET", "/api/v1/tokens?user=ann", nil)
	var list struct {
		Tokens []struct {
			ID        int       `json:"id"`
			User      string    `json:"user"`
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	decodeJSON(t, body, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].ID != id1 || list.Tokens[0].User != "ann" {
		t.Fatalf("ann's tokens: %s", body)
	}
	if d := time.Until(list.Tokens[0].ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("a token without --days expires in %v, want 90 days", d)
	}

	// Revoked from the command line.
	s.mustRun("users", "token", "revoke", strconv.Itoa(id1))
	if st := works(tok1); st != http.StatusUnauthorized {
		t.Errorf("a token revoked by the CLI: %d, want 401", st)
	}
	// Revoked over the API.
	tok2, id2 := s.newToken("ann", "--days", "7")
	if st, body := admin.do("DELETE", "/api/v1/tokens/"+strconv.Itoa(id2), nil); st != http.StatusOK || !strings.Contains(body, `"revoked_at"`) {
		t.Errorf("DELETE the token: %d %s", st, body)
	}
	if st := works(tok2); st != http.StatusUnauthorized {
		t.Errorf("a token revoked over the API: %d, want 401", st)
	}
	// Expired.
	tok3, id3 := s.newToken("ann", "--days", "1")
	conn := s.dbConn()
	if _, err := conn.Exec(context.Background(), `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, id3); err != nil {
		t.Fatal(err)
	}
	if st := works(tok3); st != http.StatusUnauthorized {
		t.Errorf("an expired token: %d, want 401", st)
	}
	// A password change ends the tokens and the sessions.
	tok4, _ := s.newToken("ann")
	ann := signedIn(t, srv, "ann", pwAnn)
	if st, _ := ann.do("GET", "/review", nil); st != http.StatusOK {
		t.Fatalf("ann's session before the password change: %d", st)
	}
	out, errs, code := s.runStdin("a-new-password-123\n", "users", "passwd", "ann", "--password-stdin")
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("users passwd: exit %d %q %q", code, out, errs)
	}
	if st := works(tok4); st != http.StatusUnauthorized {
		t.Errorf("a token after its user's password changed: %d, want 401", st)
	}
	if st, loc := ann.do("GET", "/review", nil); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("a session after the password changed: %d %s, want a redirect to sign in", st, loc)
	}

	listed := s.mustRun("users", "token", "list", "ann")
	for _, want := range []string{fmt.Sprintf("%d ", id1), "revoked", "expired"} {
		if !strings.Contains(listed, want) {
			t.Errorf("users token list ann lacks %q:\n%s", want, listed)
		}
	}
	var creates, revokes int
	conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE action = 'token.create'), count(*) FILTER (WHERE action = 'token.revoke')
		FROM audit_log WHERE object = 'user:ann'`).Scan(&creates, &revokes)
	if creates != 4 || revokes != 2 {
		t.Errorf("audited %d token creations and %d revocations for ann, want 4 and 2", creates, revokes)
	}
}

// runStdin runs chartscan with input on standard input.
func (s *stack) runStdin(input string, args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s.logs.Write(errb.Bytes())
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("chartscan %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// stream opens a batch's event stream as c and returns a channel closed when the server
// ends it.
func (c *client) stream(batchID string) <-chan struct{} {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+"/api/v1/batches/"+batchID+"/events", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("event stream: %d", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	c.t.Cleanup(func() { resp.Body.Close() })
	return ended
}

// slowUpload uploads a file to a batch as the upload page does, its bytes spread over d.
func (c *client) slowUpload(batchID, path string, d time.Duration) (int, string) {
	c.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("size", strconv.Itoa(len(data)))
		fw, _ := mw.CreateFormFile("file", filepath.Base(path))
		const parts = 10
		for i := range parts {
			time.Sleep(d / parts)
			fw.Write(data[i*len(data)/parts : (i+1)*len(data)/parts])
		}
		pw.CloseWithError(mw.Close())
	}()
	return c.do("POST", "/api/v1/batches/"+batchID+"/files", readerBody{pr}, "Content-Type", mw.FormDataContentType(),
		"X-CSRF-Token", c.csrf)
}

// waitEnded fails the test unless the stream ends within d.
func waitEnded(t *testing.T, what string, ended <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-ended:
	case <-time.After(d):
		t.Errorf("%s: the event stream is still open after %v", what, d)
	}
}

// TestWebSessionsIdleOutAndStreamsEnd runs serve with CHARTSCAN_SESSION_IDLE=3s: a session
// in use lasts past the idle period; left alone it ends, and an open event stream does
// not keep it alive but ends with it; a stream also ends at sign-out and when the token
// that opened it is revoked. Before, sessions lasted 12 hours whatever happened and
// streams until the client left. The sign-in redirect goes nowhere but this site.
func TestWebSessionsIdleOutAndStreamsEnd(t *testing.T) {
	const idle = 3 * time.Second
	s := newStack(t, "CHARTSCAN_SESSION_IDLE=3s")
	if out := s.mustRun("config"); !strings.Contains(out, "CHARTSCAN_SESSION_IDLE") || !strings.Contains(out, "3s") {
		t.Errorf("chartscan config does not list CHARTSCAN_SESSION_IDLE=3s:\n%s", out)
	}
	srv := s.startServe()
	pw := s.addUser("clara", "clerk")
	tok, tokID := s.newToken("clara")
	api := apiClient(t, srv, tok)
	st, body := api.do("POST", "/api/v1/batches", `{"label":"idle"}`)
	if st != http.StatusCreated {
		t.Fatalf("create batch: %d %s", st, body)
	}
	var batch struct{ ID string }
	decodeJSON(t, body, &batch)

	// In use, the session outlives the idle period.
	clara := signedIn(t, srv, "clara", pw)
	for range 5 {
		time.Sleep(idle / 3)
		if st, loc := clara.do("GET", "/batches", nil); st != http.StatusOK {
			t.Fatalf("a session in use, after %v: %d %s", idle/3, st, loc)
		}
	}
	// A long upload is activity while it runs: the session outlives it.
	clara.pageCSRF("/upload")
	if st, body := clara.slowUpload(batch.ID, "../../testdata/charts/chart-003.pdf", 2*idle); st != http.StatusCreated {
		t.Fatalf("an upload taking %v: %d %s", 2*idle, st, body)
	}
	if st, loc := clara.do("GET", "/batches", nil); st != http.StatusOK {
		t.Errorf("the session after an upload of %v: %d %s, want it alive", 2*idle, st, loc)
	}
	// Left alone with a stream open, it ends, and the stream with it.
	ended := clara.stream(batch.ID)
	waitEnded(t, "idle session", ended, idle+3*time.Second)
	if st, loc := clara.do("GET", "/batches", nil); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("an idle session: %d %s, want a redirect to sign in", st, loc)
	}

	// Sign-out ends the stream.
	clara = signedIn(t, srv, "clara", pw)
	csrf := clara.pageCSRF("/upload")
	ended = clara.stream(batch.ID)
	time.Sleep(idle / 3)
	if st, _ := clara.do("POST", "/logout", url.Values{"csrf": {csrf}}); st != http.StatusSeeOther {
		t.Fatalf("sign out: %d", st)
	}
	waitEnded(t, "sign-out", ended, 3*time.Second)

	// Revoking the token ends a stream it opened.
	ended = api.stream(batch.ID)
	time.Sleep(idle / 3)
	s.mustRun("users", "token", "revoke", strconv.Itoa(tokID))
	waitEnded(t, "revoked token", ended, 3*time.Second)

	// The sign-in redirect stays on this site, however "next" is spelled.
	for _, next := range []string{"/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example", "/%2F/evil.example"} {
		c := newClient(t, srv.url)
		c.do("GET", "/login", nil)
		st, loc := c.do("POST", "/login", url.Values{"csrf": {c.csrf}, "name": {"clara"}, "password": {pw}, "next": {next}})
		if st != http.StatusSeeOther || loc != "/upload" {
			t.Errorf("sign-in with next=%q: %d to %q, want /upload", next, st, loc)
		}
	}
}
