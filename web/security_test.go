package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// fakeStore is the part of the PostgreSQL index the security tests reach, in memory.
// Any other method panics through the nil Store it embeds.
type fakeStore struct {
	Store
	mu       sync.Mutex
	users    map[string]storage.User
	hashes   map[string]string
	sessions map[string]int64 // token hash → user id; deleting one signs out
	tokens   map[string]int64
	patients map[string]chartscan.Patient
	audits   []storage.AuditEntry
	lookups  atomic.Int64 // UserByName calls: sign-ins that got past the limiter
}

func newFakeStore() *fakeStore {
	return &fakeStore{users: map[string]storage.User{}, hashes: map[string]string{}, sessions: map[string]int64{},
		tokens: map[string]int64{}, patients: map[string]chartscan.Patient{}}
}

func (f *fakeStore) addUser(t *testing.T, id int64, name, role, password string) storage.User {
	t.Helper()
	h, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := storage.User{ID: id, Name: name, Role: role}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[name], f.hashes[name] = u, h
	return u
}

func (f *fakeStore) userByID(id int64) (storage.User, bool) {
	for _, u := range f.users {
		if u.ID == id {
			return u, true
		}
	}
	return storage.User{}, false
}

func (f *fakeStore) Audit(_ context.Context, e storage.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, e)
	return nil
}

func (f *fakeStore) auditCount(action, outcome string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.audits {
		if e.Action == action && e.Outcome == outcome {
			n++
		}
	}
	return n
}

func (f *fakeStore) UserByName(_ context.Context, name string) (storage.User, string, error) {
	f.lookups.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[name]
	if !ok {
		return u, "", storage.ErrNotFound
	}
	return u, f.hashes[name], nil
}

func (f *fakeStore) CreateSession(_ context.Context, userID int64, tokenHash, _ string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions[tokenHash] = userID
	return nil
}

func (f *fakeStore) Session(_ context.Context, tokenHash string, _ time.Duration) (storage.User, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.sessions[tokenHash]
	if !ok {
		return storage.User{}, "", storage.ErrNotFound
	}
	u, _ := f.userByID(id)
	return u, "csrf-" + tokenHash, nil
}

func (f *fakeStore) SessionLive(_ context.Context, tokenHash string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sessions[tokenHash]
	return ok, nil
}

func (f *fakeStore) DeleteSession(_ context.Context, tokenHash string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, tokenHash)
	return nil
}

func (f *fakeStore) TokenUser(_ context.Context, tokenHash string) (storage.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tokens[tokenHash]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	u, _ := f.userByID(id)
	return u, nil
}

func (f *fakeStore) ReviewCount(context.Context) (int, error) { return 0, nil }

func (f *fakeStore) Patient(_ context.Context, mrn string) (chartscan.Patient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.patients[mrn]
	if !ok {
		return p, storage.ErrNotFound
	}
	return p, nil
}

func (f *fakeStore) Batch(_ context.Context, id string) (storage.BatchSummary, error) {
	return storage.BatchSummary{ID: id, OwnerID: 1}, nil
}

func (f *fakeStore) BatchProgress(context.Context, string) (storage.Progress, error) {
	return storage.Progress{}, nil
}

func newFakeServer(t *testing.T, f *fakeStore, cfg Config) *Server {
	t.Helper()
	cfg.Store = f
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loginRequest is a sign-in form post from addr, with the form's CSRF cookie.
func loginRequest(name, password, addr, next string) *http.Request {
	form := url.Values{"csrf": {"c"}, "name": {name}, "password": {password}}
	if next != "" {
		form.Set("next", next)
	}
	r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: loginCookie, Value: "c"})
	r.RemoteAddr = addr
	return r
}

// hashCounter replaces a server's password check with one that counts the checks
// running at once and in all, takes d, and says no.
type hashCounter struct {
	d                time.Duration
	now, peak, total atomic.Int64
}

func (h *hashCounter) install(s *Server) {
	s.checkPassword = func(string, string) bool {
		n := h.now.Add(1)
		for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
		}
		h.total.Add(1)
		time.Sleep(h.d)
		h.now.Add(-1)
		return false
	}
}

// parallel sends n requests at once and returns how many got each status.
func parallel(s *Server, n int, req func(i int) *http.Request) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(i)
			<-start
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			mu.Lock()
			got[rec.Code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return got
}

// TestSignInGuessesAreCountedBeforeTheyAreHashed: 200 wrong passwords for one user sent
// at once. Before, each was checked against the bucket, then looked up and hashed, and
// only then counted: all 200 were evaluated (19 MiB of argon2 each). Now an attempt
// takes its token first, so only the bucket's five are.
func TestSignInGuessesAreCountedBeforeTheyAreHashed(t *testing.T) {
	f := newFakeStore()
	f.addUser(t, 1, "ann", RoleClerk, "ann-password-1")
	s := newFakeServer(t, f, Config{})
	h := &hashCounter{d: 20 * time.Millisecond}
	h.install(s)
	got := parallel(s, 200, func(i int) *http.Request {
		return loginRequest("ann", fmt.Sprintf("guess-%03d-xxxx", i), "10.0.0.1:5000", "")
	})
	if n := f.lookups.Load(); n != 5 {
		t.Errorf("%d sign-ins looked up, want 5 (the user's bucket)", n)
	}
	if n := h.total.Load(); n != 5 {
		t.Errorf("%d passwords hashed, want 5", n)
	}
	if got[http.StatusUnauthorized] != 5 || got[http.StatusTooManyRequests] != 195 {
		t.Errorf("statuses %v, want 5×401 and 195×429", got)
	}
	if n := f.auditCount("login", "denied"); n != 200 {
		t.Errorf("%d denied sign-ins audited, want 200", n)
	}
	// The right password is refused too, and costs no hash.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, loginRequest("ann", "ann-password-1", "10.0.0.2:5000", ""))
	if rec.Code != http.StatusTooManyRequests || h.total.Load() != 5 {
		t.Errorf("the right password after the flood: %d (%d hashes), want 429 without a hash", rec.Code, h.total.Load())
	}
}

// TestSignInHashesAreBounded: 200 sign-ins at once, each for another name from another
// address, so no bucket stops them. At most signInSlots hashes run at once; the requests
// that cannot get a slot within hashWait are refused as busy (503, Retry-After) quickly
// rather than queued, and give their tokens back.
func TestSignInHashesAreBounded(t *testing.T) {
	f := newFakeStore()
	s := newFakeServer(t, f, Config{})
	h := &hashCounter{d: 100 * time.Millisecond}
	h.install(s)
	s.hashWait = 50 * time.Millisecond
	start := time.Now()
	got := parallel(s, 200, func(i int) *http.Request {
		return loginRequest(fmt.Sprintf("junk%03d", i), "whatever-password", fmt.Sprintf("10.1.%d.%d:5000", i/250, i%250), "")
	})
	took := time.Since(start)
	if p := h.peak.Load(); p > signInSlots {
		t.Errorf("%d password checks ran at once, want at most %d", p, signInSlots)
	}
	if n := h.total.Load(); n > 3*signInSlots {
		t.Errorf("%d passwords hashed, want at most %d (slots × rounds within the wait)", n, 3*signInSlots)
	}
	if got[http.StatusServiceUnavailable] < 150 || got[http.StatusUnauthorized] != int(h.total.Load()) {
		t.Errorf("statuses %v with %d hashes: want the rest refused as busy", got, h.total.Load())
	}
	if took > 3*time.Second {
		t.Errorf("200 sign-ins took %v: refused ones were queued", took)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, loginRequest("late", "whatever-password", "10.9.9.9:5000", ""))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a sign-in after the burst: %d, want 401 (the slots are free again)", rec.Code)
	}
	// A busy refusal spent nothing: only the evaluated attempts hold a bucket.
	if n := s.limiter.len(); n != 2*int(h.total.Load()) {
		t.Errorf("%d buckets held after %d evaluated attempts, want %d", n, h.total.Load(), 2*h.total.Load())
	}
}

// TestJunkNamesCannotRefillAUsersBucket: before, a flood of new names cleared every
// bucket once there were 50,000, the drained ones with them. Now only refilled buckets
// are dropped; at the cap a new name is refused instead.
func TestJunkNamesCannotRefillAUsersBucket(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(100, loginLimits)
	l.now = func() time.Time { return now }
	ann := []string{"user:ann", "ip:10.0.0.1"}
	for i := range 5 {
		if !l.reserve(ann...) {
			t.Fatalf("attempt %d refused, want 5 allowed", i+1)
		}
	}
	if l.reserve(ann...) {
		t.Fatal("a sixth attempt allowed")
	}
	refused := 0
	for i := range 10_000 {
		if !l.reserve(fmt.Sprintf("user:junk%d", i), fmt.Sprintf("ip:10.2.%d.%d", i/250, i%250)) {
			refused++
		}
	}
	if refused == 0 || l.len() > 100 {
		t.Errorf("10,000 junk names: %d refused, %d buckets; want refusals at the cap of 100", refused, l.len())
	}
	if l.reserve("user:ann", "ip:10.0.0.9") {
		t.Error("after the flood ann has attempts again: her bucket was dropped")
	}
	// Time refills every bucket; a full bucket is dropped when room is needed.
	now = now.Add(30 * time.Second)
	if !l.reserve("user:ann", "ip:10.0.0.9") {
		t.Error("30 s later ann has no attempt")
	}
	// At the cap, the refilled buckets make room, and only they do.
	now = now.Add(10 * time.Minute)
	for i := range 50 {
		if !l.reserve(fmt.Sprintf("user:later%d", i), fmt.Sprintf("ip:10.4.0.%d", i)) {
			t.Fatalf("10 minutes later, attempt %d refused: the refilled buckets were not dropped", i)
		}
	}
	if l.len() != 100 || l.reserve("user:later50", "ip:10.4.0.50") {
		t.Fatalf("%d buckets, all just drained: want 100 and the next new name refused", l.len())
	}
	now = now.Add(30 * time.Second)
	if !l.reserve("user:later50", "ip:10.4.0.50") {
		t.Fatal("30 s later the refilled buckets were not dropped")
	}
	// A refunded attempt leaves a full bucket, which is not kept.
	n := l.len()
	l.refund("user:later50", "ip:10.4.0.50")
	if l.len() != n-2 {
		t.Errorf("%d buckets after the refund, want %d", l.len(), n-2)
	}
}

// TestSignInRefundsARightPassword: 25 colleagues behind one address (more than its
// bucket of 20) sign in at the start of a shift, and none is refused: now that every
// attempt takes its tokens first, a right password must give them back.
func TestSignInRefundsARightPassword(t *testing.T) {
	f := newFakeStore()
	for i := range 25 {
		f.addUser(t, int64(i+1), fmt.Sprintf("u%d", i), RoleClerk, "right-password")
	}
	s := newFakeServer(t, f, Config{})
	for i := range 25 {
		name := fmt.Sprintf("u%d", i)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, loginRequest(name, "right-password", "10.0.0.1:1", ""))
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d, want 303", i, rec.Code)
		}
	}
	if n := s.limiter.len(); n != 0 {
		t.Errorf("%d buckets after right passwords only, want 0", n)
	}
}

// TestSafeNextKeepsRedirectsOnThisSite: the "next" of a sign-in is followed only to a
// path of this site, in every spelling a browser would read as another host.
func TestSafeNextKeepsRedirectsOnThisSite(t *testing.T) {
	for in, want := range map[string]string{
		"/review":                   "/review",
		"/batches/6f1c?flash=a%20b": "/batches/6f1c?flash=a%20b",
		"/search?q=%22x%22":         "/search?q=%22x%22",
		"":                          "/",
		"/\t/evil.example":          "/", // /%09/evil.example once decoded: browsers drop the tab
		"/\n/evil.example":          "/",
		"/\r\n/evil.example":        "/",
		"\t//evil.example":          "/",
		" //evil.example":           "/",
		"//evil.example":            "/",
		"///evil.example":           "/",
		"/\\evil.example":           "/",
		"\\/evil.example":           "/",
		"/%2F/evil.example":         "/", // a proxy that decodes before routing
		"/%2f%2fevil.example":       "/",
		"/%5Cevil.example":          "/",
		"/%09/evil.example":         "/",
		"https://evil.example":      "/",
		"https:evil.example":        "/",
		"javascript:alert(1)":       "/",
		"evil.example":              "/",
		"/\u00a0/evil.example":      "/",
		"/\u2028/evil.example":      "/",
		"/x\x00":                    "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSignInRedirectStaysOnThisSite signs in with each hostile "next", form-encoded as a
// link would carry it, and checks where the browser is sent.
func TestSignInRedirectStaysOnThisSite(t *testing.T) {
	f := newFakeStore()
	f.addUser(t, 1, "ann", RoleReviewer, "ann-password-1")
	s := newFakeServer(t, f, Config{})
	for _, next := range []string{"/%09/evil.example", "//evil.example", "/\\evil.example", "https://evil.example",
		"/%2F%2Fevil.example", "%2F%2Fevil.example", "/%5C%5Cevil.example", "%09//evil.example"} {
		// As in /login?next=…: the query is decoded once into the form's hidden field.
		decoded, err := url.QueryUnescape(next)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, loginRequest("ann", "ann-password-1", "10.0.0.1:1", decoded))
		loc := rec.Header().Get("Location")
		u, err := url.Parse(loc)
		if rec.Code != http.StatusSeeOther || err != nil || u.Host != "" || u.Scheme != "" || loc != "/review" {
			t.Errorf("next=%s: %d to %q, want 303 to /review", next, rec.Code, loc)
		}
		// The sign-in page echoes only a safe next into its form.
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/login?next="+url.QueryEscape(decoded), nil))
		if body := rec.Body.String(); strings.Contains(body, "evil.example") {
			t.Errorf("next=%s: the sign-in page carries it on", next)
		}
	}
}

// TestCoversheetHidesPatientsFromClerks: a clerk who guesses an MRN learns nothing (an
// unknown MRN and a known one with another name answer alike), every lookup is
// audited, found or not, and misses are rate limited; the right MRN, name and birth
// date from the chart print the sheet. A reviewer needs the MRN only.
func TestCoversheetHidesPatientsFromClerks(t *testing.T) {
	f := newFakeStore()
	f.addUser(t, 1, "clara", RoleClerk, "x-password-1")
	f.addUser(t, 2, "rita", RoleReviewer, "x-password-1")
	f.tokens[tokenHash("clara")], f.tokens[tokenHash("rita")] = 1, 2
	f.patients["123456782"] = chartscan.Patient{MRN: "123456782", Family: "Núñez-O'Brien", Given: "Ana", BirthDate: "1950-03-04"}
	f.patients["223456781"] = chartscan.Patient{MRN: "223456781", Family: "Lee", BirthDate: "1961"}
	printed := 0
	s := newFakeServer(t, f, Config{Coversheet: func(w io.Writer, p chartscan.Patient, _, _ string) error {
		printed++
		_, err := io.WriteString(w, "%PDF-"+p.MRN)
		return err
	}})
	get := func(who, query string) (int, string) {
		r := httptest.NewRequest("GET", "/coversheet?"+query, nil)
		r.Header.Set("Authorization", "Bearer "+who)
		r.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec.Code, rec.Body.String()
	}

	if st, _ := get("clara", "mrn=123456782"); st != http.StatusBadRequest {
		t.Errorf("clerk, MRN only: %d, want 400 (name and birth date needed)", st)
	}
	unknownSt, unknown := get("clara", "mrn=999999999&family=Nunez&dob=1950-03-04")
	wrongSt, wrong := get("clara", "mrn=123456782&family=Smith&dob=1950-03-04")
	wrongDobSt, wrongDob := get("clara", "mrn=123456782&family=Nunez+OBrien&dob=1950-03-05")
	if unknownSt != http.StatusNotFound || wrongSt != unknownSt || wrong != unknown || wrongDobSt != unknownSt || wrongDob != unknown {
		t.Errorf("clerk: an unknown MRN (%d %s) and a known one with another name (%d %s) or birth date (%d %s) answer differently",
			unknownSt, unknown, wrongSt, wrong, wrongDobSt, wrongDob)
	}
	if strings.Contains(wrong, "Ana") || strings.Contains(wrong, "1950") {
		t.Errorf("a miss shows the patient: %s", wrong)
	}
	if st, body := get("clara", "mrn=123456782&family=nunez+o%27brien&dob=1950-03-04"); st != http.StatusOK || body != "%PDF-123456782" {
		t.Errorf("clerk with the chart's MRN, name and birth date: %d %q, want the PDF", st, body)
	}
	if st, _ := get("clara", "mrn=223456781&family=Lee&dob=1961-07-01"); st != http.StatusOK {
		t.Errorf("clerk, a birth date the EMPI knows only to the year: %d, want the PDF", st)
	}
	if st, _ := get("rita", "mrn=123456782"); st != http.StatusOK {
		t.Errorf("reviewer, MRN only: %d, want the PDF", st)
	}
	if st, body := get("rita", "mrn=999999999"); st != http.StatusNotFound || !strings.Contains(body, "no patient with that MRN") {
		t.Errorf("reviewer, unknown MRN: %d %s", st, body)
	}
	if ok, miss := f.auditCount("coversheet.print", "ok"), f.auditCount("coversheet.print", "not_found"); ok != 3 || miss != 4 {
		t.Errorf("audited %d prints and %d misses, want 3 and 4", ok, miss)
	}
	// Misses: ten per clerk, then one a minute; the refusals are audited too.
	statuses := map[int]int{}
	for i := range 12 {
		st, _ := get("clara", fmt.Sprintf("mrn=%09d&family=X&dob=2000-01-01", i))
		statuses[st]++
	}
	if statuses[http.StatusNotFound] != 7 || statuses[http.StatusTooManyRequests] != 5 {
		t.Errorf("12 more misses: %v, want 7 more 404s (10 in all), then 429", statuses)
	}
	if n := f.auditCount("coversheet.print", "denied"); n != 5 {
		t.Errorf("%d refused lookups audited, want 5", n)
	}
	if printed != 3 {
		t.Errorf("%d sheets made, want 3", printed)
	}
}

// TestEventStreamEndsWithItsSession: before, a batch's event stream ran until the client
// left, whatever happened to the session that opened it. Now it ends at sign-out (and,
// asked the same way, at idle expiry, token revocation or a disabled user).
func TestEventStreamEndsWithItsSession(t *testing.T) {
	f := newFakeStore()
	f.addUser(t, 1, "clara", RoleClerk, "x-password-1")
	s := newFakeServer(t, f, Config{})
	s.streamCheck = 20 * time.Millisecond
	const batch = "/api/v1/batches/6f1c2d3e-0000-4000-8000-000000000001/events"
	for _, c := range []struct {
		name string
		auth func(r *http.Request)
		end  func()
	}{
		{"session", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "sess"}) },
			func() { f.DeleteSession(context.Background(), tokenHash("sess")) }},
		{"token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") },
			func() { f.mu.Lock(); delete(f.tokens, tokenHash("tok")); f.mu.Unlock() }},
	} {
		f.mu.Lock()
		f.sessions[tokenHash("sess")], f.tokens[tokenHash("tok")] = 1, 1
		f.mu.Unlock()
		r := httptest.NewRequest("GET", batch, nil)
		c.auth(r)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { s.ServeHTTP(rec, r); close(done) }()
		select {
		case <-done:
			t.Fatalf("%s: the stream ended at once: %d %s", c.name, rec.Code, rec.Body)
		case <-time.After(200 * time.Millisecond):
		}
		c.end()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: the stream is still open 2 s after its credential ended", c.name)
		}
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "event: progress") {
			t.Errorf("%s: %d %q, want a stream that had started", c.name, rec.Code, rec.Body)
		}
	}
}

func (f *fakeStore) Users(context.Context) ([]storage.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var us []storage.User
	for _, u := range f.users {
		us = append(us, u)
	}
	return us, nil
}

// fakeTokens is the token list the users page shows, and what was revoked.
type fakeTokens struct {
	*fakeStore
	list    []storage.Token
	revoked []int64
	created []time.Time
}

func (f *fakeTokens) Tokens(context.Context, string) ([]storage.Token, error) { return f.list, nil }

func (f *fakeTokens) RevokeToken(_ context.Context, id int64) (storage.Token, error) {
	for _, t := range f.list {
		if t.ID == id {
			f.revoked = append(f.revoked, id)
			return t, nil
		}
	}
	return storage.Token{}, chartscan.Errorf(chartscan.ENotFound, "no API token %d", id)
}

func (f *fakeTokens) CreateToken(_ context.Context, user, _, label string, expires time.Time) (storage.Token, error) {
	f.created = append(f.created, expires)
	return storage.Token{ID: 9, User: user, Label: label, ExpiresAt: expires}, nil
}

// TestUsersPageListsAndRevokesTokens: the admin's users page lists every token with its
// expiry and state and a Revoke button for the live ones; the button revokes (audited);
// a new token lasts the days asked for, within 1 to MaxTokenDays.
func TestUsersPageListsAndRevokesTokens(t *testing.T) {
	f := newFakeStore()
	f.addUser(t, 1, "ada", RoleAdmin, "x-password-1")
	f.sessions[tokenHash("sess")] = 1
	now := time.Now()
	used := now.Add(-time.Hour)
	ft := &fakeTokens{fakeStore: f, list: []storage.Token{
		{ID: 3, User: "ann", Label: "nightly", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), LastUsedAt: &used},
		{ID: 2, User: "ann", Label: "old", CreatedAt: now, ExpiresAt: now.Add(-time.Hour)},
		{ID: 1, User: "bo", Label: "gone", CreatedAt: now, ExpiresAt: now.Add(time.Hour), RevokedAt: &used},
	}}
	s, err := New(Config{Store: ft})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path string, form url.Values) *httptest.ResponseRecorder {
		var r *http.Request
		if form != nil {
			form.Set("csrf", "csrf-"+tokenHash("sess"))
			r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, path, nil)
		}
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: "sess"})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	rec := do("GET", "/admin/users", nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("users page: %d\n%s", rec.Code, body)
	}
	if n := strings.Count(body, `action="/admin/tokens/`); n != 1 || !strings.Contains(body, `action="/admin/tokens/3/revoke"`) {
		t.Errorf("%d revoke buttons, want one, for token 3", n)
	}
	for _, want := range []string{"nightly", "expired", "revoked", `name="days"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the users page lacks %q", want)
		}
	}
	if rec := do("POST", "/admin/tokens/3/revoke", url.Values{}); rec.Code != http.StatusSeeOther || len(ft.revoked) != 1 {
		t.Errorf("revoke: %d, revoked %v", rec.Code, ft.revoked)
	}
	if rec := do("POST", "/admin/tokens/77/revoke", url.Values{}); rec.Code != http.StatusNotFound {
		t.Errorf("revoke an unknown token: %d, want 404", rec.Code)
	}
	if n := f.auditCount("token.revoke", "ok"); n != 1 {
		t.Errorf("%d revocations audited, want 1", n)
	}
	for _, days := range []string{"0", "367", "many"} {
		if rec := do("POST", "/admin/tokens", url.Values{"name": {"ann"}, "days": {days}}); rec.Code != http.StatusBadRequest {
			t.Errorf("a token for %s days: %d, want 400", days, rec.Code)
		}
	}
	rec = do("POST", "/admin/tokens", url.Values{"name": {"ann"}, "label": {"x"}, "days": {"7"}})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "cst_") || len(ft.created) != 1 {
		t.Fatalf("a 7-day token: %d, created %v", rec.Code, ft.created)
	}
	if d := time.Until(ft.created[0]); d < 7*24*time.Hour-time.Minute || d > 7*24*time.Hour {
		t.Errorf("a 7-day token expires in %v", d)
	}
}

// TestSignInBoundsTheNameItKeeps: a megabyte-long or invalid name is cut to maxNameLen
// valid UTF-8 before it keys a bucket or goes to the audit log.
func TestSignInBoundsTheNameItKeeps(t *testing.T) {
	f := newFakeStore()
	s := newFakeServer(t, f, Config{})
	(&hashCounter{}).install(s)
	for _, name := range []string{strings.Repeat("é", 1<<19), "bad\xff\xfename"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, loginRequest(name, "whatever-password", "10.0.0.1:1", ""))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("a %d-byte name: %d, want 401", len(name), rec.Code)
		}
	}
	s.limiter.mu.Lock()
	for k := range s.limiter.buckets {
		if len(k) > len("user:")+maxNameLen+2 || !utf8.ValidString(k) {
			t.Errorf("a bucket keyed by %d bytes (valid UTF-8: %v)", len(k), utf8.ValidString(k))
		}
	}
	s.limiter.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.audits {
		if len(e.Actor) > maxNameLen+2 || !utf8.ValidString(e.Actor) || !utf8.ValidString(e.Object) {
			t.Errorf("an audit entry with a %d-byte actor (valid UTF-8: %v)", len(e.Actor), utf8.ValidString(e.Actor))
		}
	}
}
