package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), which
// keeps a sign-in near 30 ms on the small hosts chartscan shares with Tesseract.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 10

// HashPassword returns the argon2id hash of password in the PHC string format, with a
// fresh random salt.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", chartscan.Errorf(chartscan.EInvalid, "a password needs at least %d characters", MinPasswordLength)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches a hash from HashPassword. The
// parameters are read from the hash, so raising them later keeps old hashes valid.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a user does not exist, so a sign-in takes as long
// whether or not the name is known. It is made on first use: every command links this
// package, and only serve signs anyone in.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("not-a-real-password")
	return h
})

// NewToken returns a fresh API token and the hash under which it is stored. The token is
// shown once; only its SHA-256 is kept.
func NewToken() (token, hash string) {
	token = "cst_" + randomString(32)
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

const (
	sessionCookie = "chartscan_session"
	loginCookie   = "chartscan_login" // the CSRF token of the sign-in form, before a session exists
	sessionLength = 12 * time.Hour    // one working shift, then sign in again

	// DefaultSessionIdle is how long a session lasts without a request (HIPAA's automatic
	// logoff), when Config.SessionIdle is not set.
	DefaultSessionIdle = 15 * time.Minute
	// MaxSessionIdle is the longest idle period allowed: a session's whole length.
	MaxSessionIdle = sessionLength

	// signInSlots is how many password checks run at once, 19 MiB of argon2 memory each;
	// a sign-in waits at most signInWait for a slot and is then refused as busy, so a
	// flood of guesses costs bounded memory and never queues without end.
	signInSlots = 4
	signInWait  = time.Second
	maxNameLen  = 256 // of a user name tried at sign-in; names made in the UI have at most 64
)

// Terms of API tokens, in days.
const (
	DefaultTokenDays = 90
	MaxTokenDays     = 366
)

// TokenExpiry is when a token made now for days days expires; days must be 1 to
// MaxTokenDays.
func TokenExpiry(days int) (time.Time, error) {
	if days < 1 || days > MaxTokenDays {
		return time.Time{}, chartscan.Errorf(chartscan.EInvalid, "a token lasts 1 to %d days", MaxTokenDays)
	}
	return time.Now().Add(time.Duration(days) * 24 * time.Hour), nil
}

type ctxKey int

const csrfKey ctxKey = 0

// authenticate finds the user of a request: a bearer API token, or a session cookie.
// viaToken is true for a token, which needs no CSRF token because browsers never send it
// on their own.
func (s *Server) authenticate(r *http.Request) (u *storage.User, viaToken bool, err error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, true, chartscan.Errorf(eUnauthorized, "use Authorization: Bearer <token>")
		}
		user, err := s.cfg.Store.TokenUser(ctx, tokenHash(strings.TrimSpace(tok)))
		if errors.Is(err, storage.ErrNotFound) {
			return nil, true, chartscan.Errorf(eUnauthorized, "the API token is not valid, has expired or was revoked")
		}
		if err != nil {
			return nil, true, err
		}
		return &user, true, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false, chartscan.Errorf(eUnauthorized, "sign in first")
	}
	user, csrf, err := s.cfg.Store.Session(ctx, tokenHash(c.Value), s.idle)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, chartscan.Errorf(eUnauthorized, "your session has ended; sign in again")
	}
	if err != nil {
		return nil, false, err
	}
	*r = *r.WithContext(context.WithValue(ctx, csrfKey, csrf))
	return &user, false, nil
}

// untilSignedOut runs a long-lived handler (an event stream) under a context that ends
// when the request's credential does: at sign-out, after the idle period (a stream is
// not activity), at expiry or revocation, or when the user is disabled. It asks every
// streamCheck, and a failed question ends the stream too: a browser reconnects, and the
// new request is authenticated afresh.
func (s *Server) untilSignedOut(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, u *storage.User) error {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			t := time.NewTicker(s.streamCheck)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if !s.stillSignedIn(ctx, r) {
						s.log.Debug("stream ended: signed out", "user_id", u.ID)
						cancel()
						return
					}
				}
			}
		}()
		return h(w, r.WithContext(ctx), u)
	}
}

// keepAlive counts a long request that sends data (an upload) as its session's activity
// for as long as it runs, so a clerk's session does not idle out in the middle of a large
// file; stop ends that. Event streams are GETs and never count.
func (s *Server) keepAlive(r *http.Request) (stop func()) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.idle / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// Session notes the activity; a session that has ended stays ended.
				s.cfg.Store.Session(context.WithoutCancel(r.Context()), tokenHash(c.Value), s.idle)
			}
		}
	}()
	return func() { close(done) }
}

// stillSignedIn reports whether the token or session that authenticated r still would,
// without counting as the session's activity.
func (s *Server) stillSignedIn(ctx context.Context, r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, _ := strings.CutPrefix(h, "Bearer ")
		_, err := s.cfg.Store.TokenUser(ctx, tokenHash(strings.TrimSpace(tok)))
		return err == nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	live, err := s.cfg.Store.SessionLive(ctx, tokenHash(c.Value), s.idle)
	return err == nil && live
}

// csrfToken is the CSRF token of the request's session, for forms and scripts.
func csrfToken(r *http.Request) string {
	v, _ := r.Context().Value(csrfKey).(string)
	return v
}

// checkCSRF refuses a state-changing request made with a session cookie unless it
// carries the session's CSRF token, in the form field "csrf" or the X-CSRF-Token header.
func (s *Server) checkCSRF(r *http.Request) error {
	want := csrfToken(r)
	got := r.Header.Get("X-CSRF-Token")
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue("csrf")
	}
	if got == "" {
		// Multipart forms: the token travels in the query so the body can stream.
		got = r.URL.Query().Get("csrf")
	}
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return chartscan.Errorf(eForbidden, "the form has expired or did not come from chartscan; reload the page and try again")
	}
	return nil
}

// login checks a name and password and opens a session. Every attempt is audited.
//
// The attempt takes its tokens from the limiter before anything is looked up or hashed,
// so parallel guesses cannot all be evaluated before the first failure counts; a right
// password gives them back. The hash then waits for one of signInSlots.
func (s *Server) login(w http.ResponseWriter, r *http.Request, name, password string) (*storage.User, error) {
	ctx := r.Context()
	if len(name) > maxNameLen {
		// No user has such a name; a bucket and an audit entry keyed by a megabyte-long
		// one would let a flood of them fill memory and the log.
		name = name[:maxNameLen]
	}
	name = strings.ToValidUTF8(name, "\uFFFD") // PostgreSQL refuses invalid text in the audit log
	ip, peer := s.clientIP(r)
	keys := []string{"user:" + strings.ToLower(name), "ip:" + ip}
	audit := func(outcome, why string) {
		detail := map[string]any{"reason": why, "ip": ip}
		if peer != ip {
			detail["proxy"] = peer // the trusted proxy that named ip
		}
		s.auditLogged(ctx, name, "login", "user:"+name, outcome, detail)
	}
	if !s.limiter.reserve(keys...) {
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		audit("denied", "rate limited")
		w.Header().Set("Retry-After", "30")
		return nil, chartscan.Errorf(eRateLimited, "too many failed sign-ins; wait a minute and try again")
	}
	release, ok := s.hashSlot(ctx)
	if !ok {
		// Not an attempt: nothing was checked. Not audited either: under a flood that
		// would be a database write per refused request.
		s.limiter.refund(keys...)
		s.metrics.logins.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "1")
		return nil, chartscan.Errorf(eBusy, "the server is busy signing others in; try again in a moment")
	}
	u, hash, err := s.cfg.Store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		release()
		s.limiter.refund(keys...)
		return nil, err
	}
	known := err == nil && !u.Disabled
	if !known {
		hash = dummyHash()
	}
	right := s.checkPassword(hash, password)
	release()
	if !known || !right {
		s.metrics.logins.WithLabelValues("denied").Inc()
		if !known {
			audit("denied", "unknown or disabled user")
		} else {
			audit("denied", "wrong password")
		}
		return nil, chartscan.Errorf(eUnauthorized, "wrong name or password")
	}
	s.limiter.refund(keys...)
	tok := randomString(32)
	if err := s.cfg.Store.CreateSession(ctx, u.ID, tokenHash(tok), randomString(24), time.Now().Add(sessionLength)); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(sessionLength.Seconds())})
	s.metrics.logins.WithLabelValues("ok").Inc()
	audit("ok", "")
	return &u, nil
}

// hashSlot waits up to hashWait for one of the password-check slots; release frees it.
func (s *Server) hashSlot(ctx context.Context) (release func(), ok bool) {
	t := time.NewTimer(s.hashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return func() { <-s.hashSlots }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// audit writes an audit entry. Views of patient data call it before they show anything
// and fail when it fails: an unrecorded view must not happen.
func (s *Server) audit(ctx context.Context, actor, action, object, outcome string, detail map[string]any) error {
	for k, v := range detail {
		if v == "" {
			delete(detail, k)
		}
	}
	return s.cfg.Store.Audit(context.WithoutCancel(ctx), storage.AuditEntry{Actor: actor, Action: action, Object: object,
		Outcome: outcome, Detail: detail})
}

// auditLogged writes an audit entry for something that has already happened (a refused
// sign-in, a conflict); a failed write is logged with ids only.
func (s *Server) auditLogged(ctx context.Context, actor, action, object, outcome string, detail map[string]any) {
	if err := s.audit(ctx, actor, action, object, outcome, detail); err != nil {
		s.log.Error("audit entry not written", "action", action, "error", err)
	}
}

func actorName(u *storage.User) string {
	if u == nil {
		return "anonymous"
	}
	return u.Name
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a post-login redirect on this site: a path of this origin, or "/".
//
// Browsers are lenient where Go is strict: they drop tabs and newlines inside a URL
// ("/\t/evil.example" becomes "//evil.example", another host), read "\" as "/", and
// some proxies decode "%2F" before routing. So anything with a control character,
// space or backslash is refused outright, the path must start with exactly one "/" both
// as sent and decoded, and what is returned is rebuilt from the parsed path and query.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.User != nil || u.Host != "" {
		return "/"
	}
	raw := u.EscapedPath()
	decoded, err := url.PathUnescape(raw)
	if err != nil || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") ||
		strings.HasPrefix(decoded, "//") || strings.ContainsAny(decoded, "\\\x00\t\r\n") {
		return "/"
	}
	if u.RawQuery != "" {
		raw += "?" + u.RawQuery
	}
	return raw
}
