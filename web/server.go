package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// Roles a user can have. An admin may do everything.
const (
	RoleClerk    = "clerk"    // uploads batches and sees their own
	RoleReviewer = "reviewer" // works the review queue; sees pages, charts and search
	RoleAdmin    = "admin"    // everything, plus users, EMPI import, export and the audit log
)

// ValidRole reports whether r is one of the roles.
func ValidRole(r string) bool { return r == RoleClerk || r == RoleReviewer || r == RoleAdmin }

// Store is the part of the PostgreSQL index the server uses: *storage.DB.
type Store interface {
	Ping(ctx context.Context) error
	Audit(ctx context.Context, e storage.AuditEntry) error
	AuditEntries(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEntry, error)
	VerifyAuditChain(ctx context.Context) (storage.AuditCheck, error)

	CreateUser(ctx context.Context, name, role, passwordHash string) (storage.User, error)
	UserByName(ctx context.Context, name string) (storage.User, string, error)
	Users(ctx context.Context) ([]storage.User, error)
	UpdateUser(ctx context.Context, id int64, role string, disabled bool) (storage.User, error)
	SetPassword(ctx context.Context, name, passwordHash string) error
	CreateSession(ctx context.Context, userID int64, tokenHash, csrf string, expires time.Time) error
	Session(ctx context.Context, tokenHash string, idle time.Duration) (storage.User, string, error)
	SessionLive(ctx context.Context, tokenHash string, idle time.Duration) (bool, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	CreateToken(ctx context.Context, userName, tokenHash, label string, expires time.Time) (storage.Token, error)
	Tokens(ctx context.Context, userName string) ([]storage.Token, error)
	RevokeToken(ctx context.Context, id int64) (storage.Token, error)
	TokenUser(ctx context.Context, tokenHash string) (storage.User, error)

	CreateOwnedBatch(ctx context.Context, b chartscan.Batch, ownerID int64) (chartscan.Batch, error)
	Batches(ctx context.Context, ownerID int64, limit int) ([]storage.BatchSummary, error)
	Batch(ctx context.Context, id string) (storage.BatchSummary, error)
	BatchProgress(ctx context.Context, batchID string) (storage.Progress, error)
	BatchDocuments(ctx context.Context, batchID string) ([]storage.BatchDocument, error)
	Document(ctx context.Context, id string) (chartscan.Document, error)
	DocumentUploadedBy(ctx context.Context, documentID string, userID int64) (bool, error)
	ResetDocument(ctx context.Context, id string) error

	PageDetail(ctx context.Context, documentID string, n int) (storage.PageDetail, error)
	NextReview(ctx context.Context, skip []storage.PageKey) (storage.PageKey, bool, error)
	ReviewCount(ctx context.Context) (int, error)
	Decide(ctx context.Context, d storage.Decision) (storage.Decided, error)
	DecideRun(ctx context.Context, ds []storage.Decision) ([]storage.Decided, error)
	UndoDecision(ctx context.Context, u storage.Undo) (storage.Undone, error)
	Review(ctx context.Context, id int64) (storage.ReviewRecord, error)
	LastReview(ctx context.Context, documentID string, n int) (storage.ReviewRecord, bool, error)
	Skip(ctx context.Context, sessionHash, queue string, k storage.PageKey) error
	Skips(ctx context.Context, sessionHash, queue string) ([]storage.PageKey, error)
	ClearSkips(ctx context.Context, sessionHash, queue string) error
	NextQA(ctx context.Context, skip []storage.PageKey) (storage.PageKey, bool, error)
	CheckQA(ctx context.Context, c storage.QACheck) error
	QAReport(ctx context.Context) (storage.QAReport, error)
	SearchPages(ctx context.Context, q storage.PageQuery) ([]storage.PageHit, error)
	SearchPatients(ctx context.Context, query string, limit int) ([]chartscan.Patient, error)
	Patient(ctx context.Context, mrn string) (chartscan.Patient, error)
	PatientPages(ctx context.Context, mrn string) ([]storage.ChartPage, error)
	Export(ctx context.Context, batchID string, fn func(storage.ExportRow) error) error
}

// Objects reads stored page images: *storage.Objects.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// Ingester takes one uploaded file into a batch, streaming it to the object store; the
// CLI's ingest uses the same one.
type Ingester interface {
	Ingest(ctx context.Context, batchID, name string, r io.Reader, size int64) (chartscan.Document, bool, error)
}

// Config holds a Server's dependencies. Progress, Rerun and Checks may be nil.
type Config struct {
	Store   Store
	Objects Objects
	Ingest  Ingester
	// ImportRecords loads EMPI records from r (FHIR, NDJSON or CSV) into the store.
	ImportRecords func(ctx context.Context, r io.Reader) (storage.ImportStats, error)
	// Progress subscribes to pipeline progress: it sends the id of each document that
	// moved until ctx ends. Without it live views poll.
	Progress func(ctx context.Context) (<-chan string, error)
	// Rerun queues a document that ResetDocument put back to queued.
	Rerun func(ctx context.Context, documentID string) error
	// Refile has a finished document's undecided pages filed again after a reviewer's
	// decision: it queues the work for a worker (worker.NewRefileTask) and returns; nil
	// leaves them as they are.
	Refile func(ctx context.Context, documentID string) error
	// Rescore scores a page's identifiers (as a reviewer corrected them) against the EMPI
	// as filing does, with the patients in also among the candidates (worker.Rescore);
	// nothing is saved. Nil: corrections are kept with a decision but not re-scored.
	Rescore func(ctx context.Context, ids []chartscan.Identifier, also []string) (chartscan.Filing, error)
	// Coversheet writes a one-page PDF cover sheet for p: a barcode naming the patient,
	// with their name and birth date readable, for clerks to put on top of a chart.
	Coversheet func(w io.Writer, p chartscan.Patient, docType, dateOfService string) error
	// NameKey reduces a name to what comparisons look at (indexer.NormalizeName), for the
	// clerk's check of a cover sheet's patient; nil compares letters and digits, any case.
	NameKey func(name string) string
	// Checks are the health checks besides PostgreSQL, by name (e.g. "redis").
	Checks map[string]func(ctx context.Context) error
	// SessionIdle ends a session that long without a request; DefaultSessionIdle when 0.
	SessionIdle time.Duration
	Log         *slog.Logger
	// Registry receives the server's metrics; a fresh one is made when nil.
	Registry *prometheus.Registry
	// Limits bound requests and users (timeouts, image decoding, streams, spooling);
	// zero fields take DefaultLimits'.
	Limits Limits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client
	// (ParseTrustedProxies); empty trusts none, and the client is the peer that connected.
	TrustedProxies []netip.Prefix
}

// Server is chartscan's HTTP API and web UI.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	routes  []route
	limiter *limiter // sign-ins, by user name and client address
	covers  *limiter // cover-sheet lookups, by user
	metrics *metrics
	static  http.Handler
	limits  Limits
	streams streams // open event streams per user
	spool   spool   // bytes of uploads of unknown length on disk

	idle        time.Duration // a session without a request this long is over
	streamCheck time.Duration // how often an event stream asks whether its session lives

	// Password checks: at most cap(hashSlots) at once, each waiting at most hashWait for
	// a slot. checkPassword is CheckPassword, or a test's counting wrapper.
	hashSlots     chan struct{}
	hashWait      time.Duration
	checkPassword func(hash, password string) bool
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// handler serves one route for a signed-in user u (nil on public routes). An error it
// returns is written by the route's kind: JSON for the API, a page for the UI.
type handler func(w http.ResponseWriter, r *http.Request, u *storage.User) error

// route is one entry of the routing table: the single place that says who may call what.
type route struct {
	method, path string
	roles        []string // nil: public; admin is always admitted
	api          bool
	h            handler
}

var (
	anyone    = []string{RoleClerk, RoleReviewer, RoleAdmin}
	uploaders = []string{RoleClerk, RoleAdmin}
	reviewers = []string{RoleReviewer, RoleAdmin}
	admins    = []string{RoleAdmin}
)

// New returns a Server with every route registered.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionIdle > MaxSessionIdle {
		return nil, fmt.Errorf("session idle %v is longer than a session (%v)", cfg.SessionIdle, MaxSessionIdle)
	}
	if cfg.NameKey == nil {
		cfg.NameKey = lettersAndDigits
	}
	s := &Server{cfg: cfg, log: cfg.Log, mux: http.NewServeMux(), limiter: newLoginLimiter(), covers: newCoverLimiter(),
		idle: cfg.SessionIdle, streamCheck: min(10*time.Second, cfg.SessionIdle/3),
		hashSlots: make(chan struct{}, signInSlots), hashWait: signInWait, checkPassword: CheckPassword,
		limits: cfg.Limits.withDefaults()}
	var err error
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	s.metrics = newMetrics(cfg.Registry, cfg.Store)
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.Handle("GET /static/", s.static)
	return s, nil
}

func (s *Server) routeTable() []route {
	return []route{
		// API (every one documented in openapi.yaml; TestOpenAPIMatchesRoutes checks).
		{"GET", "/api/v1/health", nil, true, s.apiHealth},
		{"GET", "/api/v1/metrics", admins, true, s.apiMetrics},
		{"GET", "/api/v1/openapi.yaml", anyone, true, s.apiOpenAPI},
		{"GET", "/api/v1/me", anyone, true, s.apiMe},
		{"GET", "/api/v1/batches", uploaders, true, s.apiBatches},
		{"POST", "/api/v1/batches", uploaders, true, s.apiCreateBatch},
		{"GET", "/api/v1/batches/{id}", uploaders, true, s.apiBatch},
		{"POST", "/api/v1/batches/{id}/files", uploaders, true, s.apiUpload},
		{"GET", "/api/v1/batches/{id}/events", uploaders, true, s.untilSignedOut(s.apiBatchEvents)},
		{"GET", "/api/v1/batches/{id}/patient-documents", uploaders, true, s.apiPatientDocuments},
		{"POST", "/api/v1/patient-documents/{id}/{version}/retry", uploaders, true, s.apiRetryDelivery},
		{"GET", "/api/v1/documents/{id}", anyone, true, s.apiDocument},
		{"POST", "/api/v1/documents/{id}/rerun", uploaders, true, s.apiRerun},
		{"GET", "/api/v1/pages/{doc}/{page}", reviewers, true, s.apiPage},
		{"GET", "/api/v1/pages/{doc}/{page}/image", reviewers, true, s.apiPageImage},
		{"GET", "/api/v1/pages/{doc}/{page}/text", reviewers, true, s.apiPageText},
		{"GET", "/api/v1/search", reviewers, true, s.apiSearch},
		{"GET", "/api/v1/review/next", reviewers, true, s.apiReviewNext},
		{"POST", "/api/v1/review/{doc}/{page}", reviewers, true, s.apiDecide},
		{"POST", "/api/v1/review/{doc}/{page}/rescore", reviewers, true, s.apiRescore},
		{"POST", "/api/v1/review/{doc}/{page}/undo", reviewers, true, s.apiUndo},
		{"GET", "/api/v1/qa/next", reviewers, true, s.apiQANext},
		{"POST", "/api/v1/qa/{doc}/{page}", reviewers, true, s.apiCheckQA},
		{"GET", "/api/v1/qa/report", admins, true, s.apiQAReport},
		{"GET", "/api/v1/patients", reviewers, true, s.apiPatients},
		{"GET", "/api/v1/patients/{mrn}", reviewers, true, s.apiPatient},
		{"POST", "/api/v1/empi/import", admins, true, s.apiImport},
		{"GET", "/api/v1/export", admins, true, s.apiExport},
		{"GET", "/api/v1/users", admins, true, s.apiUsers},
		{"POST", "/api/v1/users", admins, true, s.apiCreateUser},
		{"PATCH", "/api/v1/users/{id}", admins, true, s.apiUpdateUser},
		{"GET", "/api/v1/tokens", admins, true, s.apiTokens},
		{"DELETE", "/api/v1/tokens/{id}", admins, true, s.apiRevokeToken},
		{"GET", "/api/v1/audit", admins, true, s.apiAudit},

		// UI.
		{"GET", "/login", nil, false, s.uiLogin},
		{"POST", "/login", nil, false, s.uiLoginPost},
		{"POST", "/logout", anyone, false, s.uiLogout},
		{"GET", "/{$}", anyone, false, s.uiHome},
		{"GET", "/upload", uploaders, false, s.uiUpload},
		{"GET", "/batches", uploaders, false, s.uiBatches},
		{"GET", "/batches/{id}", uploaders, false, s.uiBatch},
		{"GET", "/batches/{id}/documents", uploaders, false, s.uiPatientDocuments},
		{"POST", "/patient-documents/{id}/{version}/retry", uploaders, false, s.uiRetryDelivery},
		{"POST", "/documents/{id}/rerun", uploaders, false, s.uiRerun},
		{"GET", "/review", reviewers, false, s.uiReviewNext},
		{"GET", "/review/{doc}/{page}", reviewers, false, s.uiReviewItem},
		{"POST", "/review/{doc}/{page}", reviewers, false, s.uiDecide},
		{"POST", "/review/{doc}/{page}/undo", reviewers, false, s.uiUndo},
		{"GET", "/review/{doc}/{page}/next", reviewers, false, s.uiPreload},
		{"GET", "/review/{doc}/{page}/search", reviewers, false, s.uiDeskSearch},
		{"POST", "/review/{doc}/{page}/skip", reviewers, false, s.uiSkip(storage.QueueReview)},
		{"POST", "/review/start-over", reviewers, false, s.uiStartOver(storage.QueueReview)},
		{"GET", "/qa", reviewers, false, s.uiQANext},
		{"GET", "/qa/{doc}/{page}", reviewers, false, s.uiQAItem},
		{"POST", "/qa/{doc}/{page}", reviewers, false, s.uiCheckQA},
		{"POST", "/qa/{doc}/{page}/skip", reviewers, false, s.uiSkip(storage.QueueQA)},
		{"POST", "/qa/start-over", reviewers, false, s.uiStartOver(storage.QueueQA)},
		{"GET", "/pages/{doc}/{page}", reviewers, false, s.uiPage},
		{"GET", "/patients", reviewers, false, s.uiPatients},
		{"GET", "/patients/{mrn}", reviewers, false, s.uiChart},
		{"GET", "/search", reviewers, false, s.uiSearch},
		// Clerks print cover sheets on the upload page, reviewers from a chart; a clerk
		// must give the patient's name and birth date from the chart (see uiCoversheet).
		{"GET", "/coversheet", anyone, false, s.uiCoversheet},
		{"GET", "/admin/users", admins, false, s.uiUsers},
		{"POST", "/admin/users", admins, false, s.uiCreateUser},
		{"POST", "/admin/users/{id}", admins, false, s.uiUpdateUser},
		{"POST", "/admin/tokens", admins, false, s.uiCreateToken},
		{"POST", "/admin/tokens/{id}/revoke", admins, false, s.uiRevokeToken},
		{"GET", "/admin/empi", admins, false, s.uiEMPI},
		{"POST", "/admin/empi", admins, false, s.uiEMPIPost},
		{"GET", "/admin/audit", admins, false, s.uiAudit},
		{"GET", "/admin/qa", admins, false, s.uiQAReport},
	}
}

// APIRoutes lists the API's routes as "METHOD /path" with ServeMux wildcards, for the
// check against openapi.yaml.
func (s *Server) APIRoutes() []string {
	var out []string
	for _, rt := range s.routes {
		if rt.api {
			out = append(out, rt.method+" "+rt.path)
		}
	}
	return out
}

// ServeHTTP serves the API, the UI and the static assets. Cross-origin browser requests
// that change state are refused before any route sees them.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	if s.viaTLS(r) {
		w.Header().Set("Strict-Transport-Security", hstsHeader)
	}
	crossOrigin.Handler(s.mux).ServeHTTP(w, r)
}

var crossOrigin = http.NewCrossOriginProtection()

// Error codes the web adds to chartscan's.
const (
	eUnauthorized = "unauthorized"
	eForbidden    = "forbidden"
	eRateLimited  = "rate_limited"
	eTooLarge     = "too_large"
	eBusy         = "busy"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	chartscan.EInvalid:  http.StatusBadRequest,
	chartscan.ENotFound: http.StatusNotFound,
	chartscan.EConflict: http.StatusConflict,
	chartscan.EInternal: http.StatusInternalServerError,
	eUnauthorized:       http.StatusUnauthorized,
	eForbidden:          http.StatusForbidden,
	eRateLimited:        http.StatusTooManyRequests,
	eTooLarge:           http.StatusRequestEntityTooLarge,
	eBusy:               http.StatusServiceUnavailable,
}

// classify turns any error into a user-safe *chartscan.Error and its HTTP status.
func classify(err error) (*chartscan.Error, int) {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrNoObject) {
		return chartscan.Errorf(chartscan.ENotFound, "not found"), http.StatusNotFound
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return chartscan.Errorf(eTooLarge, "the request is too large"), http.StatusRequestEntityTooLarge
	}
	code := chartscan.ErrorCode(err)
	e := &chartscan.Error{Code: code, Message: chartscan.ErrorMessage(err)}
	st, ok := statusOf[code]
	if !ok {
		st = http.StatusInternalServerError
	}
	return e, st
}

// statusWriter remembers the status a handler wrote, for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer (server-sent events).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wrap puts authentication, the role check, CSRF, error rendering, logs and metrics
// around a route's handler.
func (s *Server) wrap(rt route) http.Handler {
	label := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var u *storage.User
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					err = chartscan.Errorf(chartscan.EInternal, "an internal error occurred")
					// The panic value may hold data; its type is enough to start from.
					s.log.Error("handler panicked", "route", label, "panic_type", fmt.Sprintf("%T", p))
				}
			}()
			if rt.roles != nil {
				var viaToken bool
				u, viaToken, err = s.authenticate(r)
				if err != nil {
					return err
				}
				if !allowed(u.Role, rt.roles) {
					return chartscan.Errorf(eForbidden, "your role (%s) may not do this", u.Role)
				}
				if !viaToken && r.Method != http.MethodGet && r.Method != http.MethodHead {
					if err := s.checkCSRF(r); err != nil {
						return err
					}
					defer s.keepAlive(r)()
				}
			}
			return rt.h(sw, r, u)
		}()
		if err != nil {
			s.writeError(sw, r, rt, u, err)
			if u != nil {
				_, st := classify(err)
				s.auditRefusal(r, rt, u, st)
			}
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.metrics.observe(label, status, time.Since(start))
		attrs := []any{"route", label, "status", status, "ms", time.Since(start).Milliseconds()}
		if u != nil {
			attrs = append(attrs, "user_id", u.ID)
		}
		switch {
		case status == http.StatusServiceUnavailable:
			// Shedding load (busy sign-ins) or a store down, which the health check names.
			s.log.Warn("request refused", attrs...)
		case status >= 500:
			s.log.Error("request failed", append(attrs, "error", err)...)
		default:
			s.log.Debug("request", attrs...)
		}
	})
}

func allowed(role string, roles []string) bool {
	if role == RoleAdmin {
		return true
	}
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}

// writeError writes err as JSON on the API and as a page (or a redirect to sign in) in
// the UI. Only the user-safe message is shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rt route, u *storage.User, err error) {
	e, status := classify(err)
	if status == http.StatusUnauthorized && !rt.api && r.Method == http.MethodGet {
		http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	if rt.api || strings.HasPrefix(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, status, map[string]string{"error": e.Message, "code": e.Code})
		return
	}
	s.render(w, r, status, "error", u, map[string]any{"Status": status, "Message": e.Message})
}

// auditRefusal records a signed-in user's refused request: every 403, and every 404 on
// a route that names a patient, page, document or batch — a probe for what exists is
// as much the security officer's business as a view.
func (s *Server) auditRefusal(r *http.Request, rt route, u *storage.User, status int) {
	obj := routeObject(r, rt.path)
	var action string
	switch {
	case status == http.StatusForbidden:
		action = "access.denied"
		if obj == "" {
			obj = "route:" + rt.path
		}
	case status == http.StatusNotFound && obj != "":
		action = "access.not_found"
	default:
		return
	}
	s.auditLogged(r.Context(), u.Name, action, obj, "denied", map[string]any{"route": rt.method + " " + rt.path, "status": status})
}

// routeObject names what a request's path points at, in the audit log's terms, or "".
// The values come from the client: each is cut to a length no real id exceeds.
func routeObject(r *http.Request, pattern string) string {
	v := func(name string) string {
		x := r.PathValue(name)
		if len(x) > 64 {
			x = x[:64]
		}
		return strings.ToValidUTF8(x, "?")
	}
	switch {
	case strings.Contains(pattern, "{mrn}"):
		return "patient:" + v("mrn")
	case strings.Contains(pattern, "{doc}/{page}"):
		return "page:" + v("doc") + "/" + v("page")
	case strings.Contains(pattern, "/documents/{id}"):
		return "document:" + v("id")
	case strings.Contains(pattern, "/batches/{id}"):
		return "batch:" + v("id")
	}
	return ""
}
