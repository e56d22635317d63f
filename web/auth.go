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
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/time/rate"

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
// whether or not the name is known.
var dummyHash, _ = HashPassword("not-a-real-password")

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
)

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
			return nil, true, chartscan.Errorf(eUnauthorized, "the API token is not valid")
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
	user, csrf, err := s.cfg.Store.Session(ctx, tokenHash(c.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, chartscan.Errorf(eUnauthorized, "your session has ended; sign in again")
	}
	if err != nil {
		return nil, false, err
	}
	*r = *r.WithContext(context.WithValue(ctx, csrfKey, csrf))
	return &user, false, nil
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

// loginLimiter slows password guessing: each user name and each client address has a
// bucket of failed attempts that refills slowly; an empty bucket refuses sign-ins.
type loginLimiter struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{buckets: map[string]*rate.Limiter{}} }

func (l *loginLimiter) bucket(key string) *rate.Limiter {
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) > 50_000 {
			clear(l.buckets) // a flood of names must not grow memory without bound
		}
		if strings.HasPrefix(key, "ip:") {
			b = rate.NewLimiter(rate.Every(6*time.Second), 20)
		} else {
			b = rate.NewLimiter(rate.Every(30*time.Second), 5)
		}
		l.buckets[key] = b
	}
	return b
}

// blocked reports whether any of keys has no failed attempts left.
func (l *loginLimiter) blocked(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if l.bucket(k).Tokens() < 1 {
			return true
		}
	}
	return false
}

// failed spends one attempt from each of keys.
func (l *loginLimiter) failed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.bucket(k).Allow()
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// login checks a name and password and opens a session. Every attempt is audited.
func (s *Server) login(w http.ResponseWriter, r *http.Request, name, password string) (*storage.User, error) {
	ctx := r.Context()
	keys := []string{"user:" + strings.ToLower(name), "ip:" + clientIP(r)}
	audit := func(outcome, why string) {
		s.auditLogged(ctx, name, "login", "user:"+name, outcome, map[string]any{"reason": why, "ip": clientIP(r)})
	}
	if s.limiter.blocked(keys...) {
		s.metrics.logins.WithLabelValues("rate_limited").Inc()
		audit("denied", "rate limited")
		return nil, chartscan.Errorf(eRateLimited, "too many failed sign-ins; wait a minute and try again")
	}
	u, hash, err := s.cfg.Store.UserByName(ctx, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if err != nil || u.Disabled {
		CheckPassword(dummyHash, password)
		s.limiter.failed(keys...)
		s.metrics.logins.WithLabelValues("denied").Inc()
		audit("denied", "unknown or disabled user")
		return nil, chartscan.Errorf(eUnauthorized, "wrong name or password")
	}
	if !CheckPassword(hash, password) {
		s.limiter.failed(keys...)
		s.metrics.logins.WithLabelValues("denied").Inc()
		audit("denied", "wrong password")
		return nil, chartscan.Errorf(eUnauthorized, "wrong name or password")
	}
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

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}
