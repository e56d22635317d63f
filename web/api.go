package web

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 description.
func OpenAPI() []byte { return openAPI }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "the request body is not the JSON this route expects")
	}
	return nil
}

func (s *Server) apiHealth(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	run := func(name string, f func(context.Context) error) {
		checks[name] = "ok"
		if err := f(ctx); err != nil {
			checks[name] = "unavailable"
			status = http.StatusServiceUnavailable
		}
	}
	run("postgres", s.cfg.Store.Ping)
	for name, f := range s.cfg.Checks {
		run(name, f)
	}
	overall := "ok"
	if status != http.StatusOK {
		overall = "degraded"
	}
	writeJSON(w, status, map[string]any{"status": overall, "checks": checks})
	return nil
}

func (s *Server) apiMetrics(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

func (s *Server) apiOpenAPI(w http.ResponseWriter, _ *http.Request, _ *storage.User) error {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(openAPI)
	return nil
}

type meView struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func (s *Server) apiMe(w http.ResponseWriter, _ *http.Request, u *storage.User) error {
	writeJSON(w, http.StatusOK, meView{u.ID, u.Name, u.Role})
	return nil
}

// ownerFilter is the owner whose batches a user may list: their own for a clerk.
func ownerFilter(u *storage.User) int64 {
	if u.Role == RoleClerk {
		return u.ID
	}
	return 0
}

func (s *Server) apiBatches(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	bs, err := s.cfg.Store.Batches(r.Context(), ownerFilter(u), 200)
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []storage.BatchSummary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"batches": bs})
	return nil
}

func (s *Server) apiCreateBatch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	var in struct {
		Label  string `json:"label"`
		Urgent bool   `json:"urgent"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &in); err != nil {
			return err
		}
	}
	b, err := s.createBatch(r.Context(), u, in.Label, in.Urgent)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": b.ID, "label": b.Label, "urgent": b.Urgent, "created_at": b.CreatedAt})
	return nil
}

func (s *Server) createBatch(ctx context.Context, u *storage.User, label string, urgent bool) (chartscan.Batch, error) {
	if len(label) > 200 {
		return chartscan.Batch{}, chartscan.Errorf(chartscan.EInvalid, "a batch label has at most 200 characters")
	}
	return s.cfg.Store.CreateOwnedBatch(ctx, chartscan.Batch{ID: uuid.NewString(), Label: label, Urgent: urgent}, u.ID)
}

// batchFor returns a batch the user may see. Another clerk's batch is "not found", not
// "forbidden": its existence is nobody else's business. The scanners' batches (intake,
// watched folder) are no user's: every clerk sees them.
func (s *Server) batchFor(ctx context.Context, u *storage.User, id string) (storage.BatchSummary, error) {
	if _, err := uuid.Parse(id); err != nil {
		return storage.BatchSummary{}, chartscan.Errorf(chartscan.ENotFound, "no such batch")
	}
	b, err := s.cfg.Store.Batch(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Role == RoleClerk && b.OwnerID != u.ID && !(b.OwnerID == 0 && b.Source != "")) {
		return b, chartscan.Errorf(chartscan.ENotFound, "no such batch")
	}
	return b, err
}

// progressView is a batch's progress as the API and the live views send it.
type progressView struct {
	Documents       int                          `json:"documents"`
	DocumentsFinal  int                          `json:"documents_final"`
	DocumentsFailed int                          `json:"documents_failed"`
	Pages           int                          `json:"pages"`
	PagesFinal      int                          `json:"pages_final"`
	PagesByStatus   map[chartscan.PageStatus]int `json:"pages_by_status"`
	Done            bool                         `json:"done"`
	Failed          []failedView                 `json:"failed"`
}

type failedView struct {
	DocumentID string `json:"document_id"`
	FileName   string `json:"file_name"`
	Reason     string `json:"reason"`
}

func (s *Server) progress(ctx context.Context, batchID string) (progressView, error) {
	p, err := s.cfg.Store.BatchProgress(ctx, batchID)
	if err != nil {
		return progressView{}, err
	}
	v := progressView{Documents: p.Documents, DocumentsFinal: p.DocumentsFinal, DocumentsFailed: p.DocumentsFailed,
		Pages: p.Pages, PagesFinal: p.PagesFinal(), PagesByStatus: p.PagesByStatus, Done: p.Documents > 0 && p.Done(),
		Failed: []failedView{}}
	for _, f := range p.FailedReasons {
		v.Failed = append(v.Failed, failedView(f))
	}
	return v, nil
}

// documentView is a document as the API shows it.
type documentView struct {
	ID          string    `json:"id"`
	BatchID     string    `json:"batch_id"`
	FileName    string    `json:"file_name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	PageCount   int       `json:"page_count"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	PagesFinal  *int      `json:"pages_final,omitempty"`
	PagesReview *int      `json:"pages_review,omitempty"`
}

func viewDocument(d chartscan.Document) documentView {
	return documentView{ID: d.ID, BatchID: d.BatchID, FileName: d.FileName, ContentType: d.ContentType, Size: d.Size,
		SHA256: d.SHA256, PageCount: d.PageCount, Status: string(d.Status), Reason: d.Reason, CreatedAt: d.CreatedAt}
}

// batchDetail loads a batch u may see, with its progress and documents: what both the
// API and the batch page show.
func (s *Server) batchDetail(ctx context.Context, u *storage.User, id string) (storage.BatchSummary, progressView, []storage.BatchDocument, error) {
	b, err := s.batchFor(ctx, u, id)
	if err != nil {
		return b, progressView{}, nil, err
	}
	p, err := s.progress(ctx, b.ID)
	if err != nil {
		return b, p, nil, err
	}
	docs, err := s.cfg.Store.BatchDocuments(ctx, b.ID)
	return b, p, docs, err
}

func (s *Server) apiBatch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	b, p, docs, err := s.batchDetail(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	dv := []documentView{}
	for _, d := range docs {
		v := viewDocument(d.Document)
		v.PagesFinal, v.PagesReview = &d.PagesFinal, &d.Review
		dv = append(dv, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"batch": b, "progress": p, "documents": dv})
	return nil
}

// maxUpload bounds one request's body; a larger scan should come through the CLI.
const maxUpload = 4 << 30

type uploadResult struct {
	FileName   string `json:"file_name"`
	DocumentID string `json:"document_id,omitempty"`
	Created    bool   `json:"created"`
	Error      string `json:"error,omitempty"`
}

// apiUpload streams files into a batch. A multipart body may hold several files; a
// "size" field before a file lets it go to MinIO as it arrives. A file without one is
// spooled to a temporary file first, because MinIO's client buffers hundreds of MiB in
// memory for an upload of unknown length. Any other body is one file named by ?name=.
func (s *Server) apiUpload(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	w = s.rolling(w, r) // a large scan takes as long as it takes, while it moves
	b, err := s.batchFor(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := s.upload(r, b.ID)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	for _, x := range res {
		if x.Error != "" {
			status = http.StatusMultiStatus
		}
	}
	writeJSON(w, status, map[string]any{"batch_id": b.ID, "files": res})
	return nil
}

func (s *Server) upload(r *http.Request, batchID string) ([]uploadResult, error) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(nil, r.Body, maxUpload)
	var out []uploadResult
	ingest := func(name string, body io.Reader, size int64) {
		if size < 0 {
			// Spooled to disk: counted against the server's spool quota while it is there.
			q := s.spool.reader(body, s.limits.SpoolBytes)
			defer q.release()
			body = q
		}
		res := uploadResult{FileName: name}
		doc, created, err := s.ingestSized(ctx, batchID, name, body, size)
		if err != nil {
			res.Error = chartscan.ErrorMessage(err)
			if chartscan.ErrorCode(err) == chartscan.EInternal {
				res.Error = "the file could not be stored; try again"
				s.log.Error("upload failed", "batch_id", batchID, "error", err)
			}
			s.metrics.uploads.WithLabelValues("failed").Inc()
		} else {
			res.DocumentID, res.Created = doc.ID, created
			s.metrics.uploads.WithLabelValues("ok").Inc()
		}
		out = append(out, res)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		name := cleanName(r.URL.Query().Get("name"))
		if name == "" {
			return nil, chartscan.Errorf(chartscan.EInvalid, "name the file with ?name=, or send a multipart form")
		}
		ingest(name, r.Body, r.ContentLength)
		return out, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, chartscan.Errorf(chartscan.EInvalid, "the upload is not a readable multipart form")
	}
	size := int64(-1)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, chartscan.Errorf(chartscan.EInvalid, "the upload was cut off; send the files again")
		}
		if part.FileName() == "" {
			if part.FormName() == "size" {
				v, _ := io.ReadAll(io.LimitReader(part, 32))
				if size, err = strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err != nil || size < 0 {
					return out, chartscan.Errorf(chartscan.EInvalid, "size must be a number of bytes")
				}
			}
			part.Close()
			continue
		}
		ingest(cleanName(part.FileName()), part, size)
		part.Close()
		size = -1
	}
	if len(out) == 0 {
		return nil, chartscan.Errorf(chartscan.EInvalid, "the form holds no file")
	}
	return out, nil
}

func cleanName(n string) string {
	n = filepath.Base(strings.ReplaceAll(n, "\\", "/"))
	if n == "." || n == "/" {
		return ""
	}
	return n
}

// ingestSized ingests body, whose length is size (-1: unknown). An unknown length is
// spooled to disk so the object store gets an exact one; a body that is not as long as
// it said is refused.
func (s *Server) ingestSized(ctx context.Context, batchID, name string, body io.Reader, size int64) (chartscan.Document, bool, error) {
	if size < 0 {
		f, err := os.CreateTemp("", "chartscan-upload-")
		if err != nil {
			return chartscan.Document{}, false, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		n, err := io.Copy(f, body)
		if err != nil {
			return chartscan.Document{}, false, uploadCut(err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return chartscan.Document{}, false, err
		}
		body, size = f, n
	}
	cr := &countingReader{r: io.LimitReader(body, size)}
	doc, created, err := s.cfg.Ingest.Ingest(ctx, batchID, name, cr, size)
	if err != nil {
		// Short of the end, the body was cut off — unless the ingester says which store
		// did not take it (the clerk's connection was fine then).
		if cr.n < size && chartscan.ErrorCode(err) == chartscan.EInternal {
			return doc, false, uploadCut(err)
		}
		return doc, false, err
	}
	// Bytes past the declared size mean the size was wrong: say so rather than store half.
	if extra, _ := io.Copy(io.Discard, io.LimitReader(body, 1)); extra > 0 {
		return doc, created, chartscan.Errorf(chartscan.EInvalid, "the file is longer than its declared size; only the declared bytes were stored")
	}
	return doc, created, nil
}

func uploadCut(err error) error {
	if errors.Is(err, errSpoolFull) {
		return &chartscan.Error{Code: eBusy, Message: "the server is holding too many uploads of unknown size; send each file's size before it (the upload page does), or try again later", Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return chartscan.Errorf(eTooLarge, "the upload is larger than %d GiB; use the command line for it", maxUpload>>30)
	}
	return &chartscan.Error{Code: chartscan.EInvalid, Message: "the upload was cut off before the end of the file; send it again", Err: err}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// documentFor returns a document the user may see: a clerk only their own uploads.
func (s *Server) documentFor(ctx context.Context, u *storage.User, id string) (chartscan.Document, error) {
	if _, err := uuid.Parse(id); err != nil {
		return chartscan.Document{}, chartscan.Errorf(chartscan.ENotFound, "no such document")
	}
	d, err := s.cfg.Store.Document(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return d, chartscan.Errorf(chartscan.ENotFound, "no such document")
	}
	if err != nil {
		return d, err
	}
	if u.Role == RoleClerk {
		ok, err := s.cfg.Store.DocumentUploadedBy(ctx, id, u.ID)
		if err != nil {
			return d, err
		}
		if !ok {
			return d, chartscan.Errorf(chartscan.ENotFound, "no such document")
		}
	}
	return d, nil
}

func (s *Server) apiDocument(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	d, err := s.documentFor(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewDocument(d))
	return nil
}

func (s *Server) rerun(ctx context.Context, u *storage.User, id string) error {
	if _, err := s.documentFor(ctx, u, id); err != nil {
		return err
	}
	if err := s.cfg.Store.ResetDocument(ctx, id); err != nil {
		return err
	}
	if s.cfg.Rerun != nil {
		if err := s.cfg.Rerun(ctx, id); err != nil {
			// The document is queued in PostgreSQL: a worker's reconcile picks it up.
			s.log.Warn("re-run enqueue failed; reconcile will pick the document up", "document_id", id, "error", err)
		}
	}
	s.auditLogged(ctx, u.Name, "document.rerun", "document:"+id, "ok", nil)
	return nil
}

func (s *Server) apiRerun(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	if err := s.rerun(r.Context(), u, r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"document_id": r.PathValue("id"), "status": "queued"})
	return nil
}

func pageKey(r *http.Request) (storage.PageKey, error) {
	n, err := strconv.Atoi(r.PathValue("page"))
	if _, uerr := uuid.Parse(r.PathValue("doc")); uerr != nil || err != nil || n < 1 {
		return storage.PageKey{}, chartscan.Errorf(chartscan.ENotFound, "no such page")
	}
	return storage.PageKey{DocumentID: r.PathValue("doc"), Page: n}, nil
}

// viewPage loads a page for a user and records the view in the audit log first.
func (s *Server) viewPage(ctx context.Context, u *storage.User, k storage.PageKey, action string) (storage.PageDetail, error) {
	d, err := s.cfg.Store.PageDetail(ctx, k.DocumentID, k.Page)
	if errors.Is(err, storage.ErrNotFound) {
		return d, chartscan.Errorf(chartscan.ENotFound, "no such page")
	}
	if err != nil {
		return d, err
	}
	return d, s.audit(ctx, u.Name, action, "page:"+k.String(), "ok", nil)
}

// identifierView is one extracted identifier as the API shows it.
type identifierView struct {
	Kind       string        `json:"kind"`
	Value      string        `json:"value"`
	Raw        string        `json:"raw"`
	Confidence float64       `json:"confidence"`
	Box        chartscan.Box `json:"box"`
}

// pageView is a page as the API shows it.
type pageView struct {
	DocumentID    string                    `json:"document_id"`
	Page          int                       `json:"page"`
	FileName      string                    `json:"file_name"`
	BatchID       string                    `json:"batch_id"`
	Status        string                    `json:"status"`
	Reason        string                    `json:"reason,omitempty"`
	MRN           string                    `json:"mrn,omitempty"`
	Score         float64                   `json:"score"`
	DocType       string                    `json:"doc_type,omitempty"`
	DateOfService string                    `json:"date_of_service,omitempty"`
	Width         int                       `json:"width"`
	Height        int                       `json:"height"`
	Version       int                       `json:"version"`
	PageCount     int                       `json:"page_count"`
	PreviousMRN   string                    `json:"previous_mrn,omitempty"`
	DecidedBy     string                    `json:"decided_by,omitempty"`
	Identifiers   []identifierView          `json:"identifiers"`
	Candidates    []storage.RankedCandidate `json:"candidates"`
}

func viewPage(d storage.PageDetail) pageView {
	v := pageView{DocumentID: d.DocumentID, Page: d.Number, FileName: d.FileName, BatchID: d.BatchID, Status: string(d.Status),
		Reason: d.Reason, MRN: d.MRN, Score: d.Score, DocType: d.DocType, DateOfService: d.DateOfService, Width: d.Width,
		Height: d.Height, Version: d.Version, PageCount: d.PageCount, PreviousMRN: d.PrevMRN, DecidedBy: d.DecidedBy,
		Identifiers: []identifierView{}, Candidates: d.Candidates}
	for _, id := range d.Identifiers {
		v.Identifiers = append(v.Identifiers, identifierView{string(id.Kind), id.Value, id.Raw, id.Confidence, id.Box})
	}
	if v.Candidates == nil {
		v.Candidates = []storage.RankedCandidate{}
	}
	return v
}

func (s *Server) apiPage(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	d, err := s.viewPage(r.Context(), u, k, "page.view")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewPage(d))
	return nil
}

func (s *Server) apiPageText(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	d, err := s.viewPage(r.Context(), u, k, "page.text")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	io.WriteString(w, d.Text)
	return nil
}

func (s *Server) apiPageImage(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	width := 0
	if v := r.URL.Query().Get("width"); v != "" {
		if width, err = strconv.Atoi(v); err != nil || width < 16 || width > 4000 {
			return chartscan.Errorf(chartscan.EInvalid, "width must be between 16 and 4000 pixels")
		}
	}
	d, err := s.viewPage(r.Context(), u, k, "page.image")
	if err != nil {
		return err
	}
	// Every request is audited as before; a URL naming the image's version may be kept
	// by the browser, so a revisit (an undo, a skipped item again) does not fetch it again.
	v := r.URL.Query().Get("v")
	return s.servePageImage(w, r, d, width, v != "" && v == imageVersion(d))
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	hits, err := s.search(r, u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"pages": hits})
	return nil
}

func searchQuery(r *http.Request) storage.PageQuery {
	q := r.URL.Query()
	return storage.PageQuery{Text: strings.TrimSpace(q.Get("q")), BatchID: q.Get("batch"), Status: q.Get("status"),
		DocType: q.Get("doc_type"), From: q.Get("from"), To: q.Get("to"), Limit: 100}
}

// search runs a page search and records it; the query may name a patient, and who
// looked for whom belongs in the audit log.
func (s *Server) search(r *http.Request, u *storage.User) ([]storage.PageHit, error) {
	q := searchQuery(r)
	hits, err := s.cfg.Store.SearchPages(r.Context(), q)
	if err != nil {
		return nil, err
	}
	if hits == nil {
		hits = []storage.PageHit{}
	}
	err = s.audit(r.Context(), u.Name, "page.search", "pages", "ok", map[string]any{"q": q.Text, "batch": q.BatchID,
		"status": q.Status, "doc_type": q.DocType, "from": q.From, "to": q.To, "results": len(hits)})
	return hits, err
}

func parseSkip(vals []string) []storage.PageKey {
	var out []storage.PageKey
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			doc, n, ok := strings.Cut(s, "/")
			p, err := strconv.Atoi(n)
			if _, uerr := uuid.Parse(doc); ok && err == nil && uerr == nil {
				out = append(out, storage.PageKey{DocumentID: doc, Page: p})
			}
		}
	}
	return out
}

func (s *Server) apiReviewNext(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, ok, err := s.cfg.Store.NextReview(r.Context(), parseSkip(r.URL.Query()["skip"]))
	if err != nil {
		return err
	}
	n, err := s.cfg.Store.ReviewCount(r.Context())
	if err != nil {
		return err
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"remaining": n, "item": nil})
		return nil
	}
	d, err := s.viewPage(r.Context(), u, k, "page.view")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"remaining": n, "item": viewPage(d)})
	return nil
}

// decisionInput is a reviewer's decision as the API takes it.
type decisionInput struct {
	Version int               `json:"version"`
	Action  string            `json:"action"`
	MRN     string            `json:"mrn,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}

func (s *Server) decide(ctx context.Context, u *storage.User, k storage.PageKey, in decisionInput) (storage.Decided, error) {
	var out storage.Decided
	var err error
	for f, v := range in.Fields {
		if len(f) > 40 || len(v) > 200 || len(in.Fields) > 20 {
			err = chartscan.Errorf(chartscan.EInvalid, "corrected fields are too long")
		}
	}
	if err == nil {
		out, err = s.cfg.Store.Decide(ctx, storage.Decision{PageKey: k, Version: in.Version, Action: in.Action, MRN: strings.TrimSpace(in.MRN),
			ActorID: u.ID, Actor: u.Name, Fields: in.Fields})
	}
	outcome := "ok"
	if err != nil {
		outcome = chartscan.ErrorCode(err)
		if outcome == chartscan.EConflict || outcome == chartscan.EInvalid {
			// The decision changed nothing; the attempt is still worth a line. (A page
			// that is not there is a 404 the router records; a 403 never gets here.)
			s.auditLogged(ctx, u.Name, "review.decide", "page:"+k.String(), "denied",
				map[string]any{"action": in.Action, "version": in.Version, "reason": chartscan.ErrorMessage(err)})
		}
	}
	s.metrics.decisions.WithLabelValues(in.Action, outcome).Inc()
	if err == nil && s.cfg.Refile != nil {
		// The decision may settle its neighbours: the pages without identifiers after a
		// page filed to a patient, the pages after a split. The decision stands either way.
		if rerr := s.cfg.Refile(ctx, k.DocumentID); rerr != nil && chartscan.ErrorCode(rerr) != chartscan.EConflict {
			s.log.WarnContext(ctx, "re-filing after a decision failed", "document_id", k.DocumentID, "error", rerr)
		}
	}
	return out, err
}

func (s *Server) apiDecide(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	var in decisionInput
	if err := readJSON(r, &in); err != nil {
		s.auditLogged(r.Context(), u.Name, "review.decide", "page:"+k.String(), "denied", map[string]any{"reason": chartscan.ErrorMessage(err)})
		return err
	}
	out, err := s.decide(r.Context(), u, k, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) searchPatients(ctx context.Context, u *storage.User, q string) ([]chartscan.Patient, error) {
	ps, err := s.cfg.Store.SearchPatients(ctx, q, 20)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		ps = []chartscan.Patient{}
	}
	return ps, s.audit(ctx, u.Name, "patient.search", "patients", "ok", map[string]any{"q": q, "results": len(ps)})
}

func (s *Server) apiPatients(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	ps, err := s.searchPatients(r.Context(), u, r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": ps})
	return nil
}

// chart loads a patient and the pages filed to them, recording the view first.
func (s *Server) chart(ctx context.Context, u *storage.User, mrn string) (chartscan.Patient, []storage.ChartPage, error) {
	p, err := s.cfg.Store.Patient(ctx, mrn)
	if errors.Is(err, storage.ErrNotFound) {
		return p, nil, chartscan.Errorf(chartscan.ENotFound, "no patient with that MRN in the EMPI")
	}
	if err != nil {
		return p, nil, err
	}
	pages, err := s.cfg.Store.PatientPages(ctx, p.MRN)
	if err != nil {
		return p, nil, err
	}
	if pages == nil {
		pages = []storage.ChartPage{}
	}
	return p, pages, s.audit(ctx, u.Name, "chart.view", "patient:"+p.MRN, "ok", map[string]any{"pages": len(pages)})
}

func (s *Server) apiPatient(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	p, pages, err := s.chart(r.Context(), u, r.PathValue("mrn"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": p, "pages": pages})
	return nil
}

// importRecords loads an EMPI file and records the import, whatever its outcome.
func (s *Server) importRecords(ctx context.Context, u *storage.User, name string, r io.Reader) (storage.ImportStats, error) {
	if s.cfg.ImportRecords == nil {
		return storage.ImportStats{}, chartscan.Errorf(chartscan.EInternal, "EMPI import is not configured")
	}
	st, err := s.cfg.ImportRecords(ctx, r)
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	s.auditLogged(ctx, u.Name, "empi.import", "empi", outcome, map[string]any{"file": name, "read": st.Read,
		"inserted": st.Inserted, "updated": st.Updated, "unchanged": st.Unchanged, "skipped": st.Skipped})
	if err != nil && chartscan.ErrorCode(err) == chartscan.EInternal {
		return st, &chartscan.Error{Code: chartscan.EInvalid, Message: "the file could not be imported: " + firstLine(err.Error()), Err: err}
	}
	return st, err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// firstFile returns the first file part of a multipart request.
func firstFile(r *http.Request) (*multipart.Part, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, chartscan.Errorf(chartscan.EInvalid, "send the file as a multipart form")
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "the form holds no file")
		}
		if p.FileName() != "" {
			return p, nil
		}
	}
}

func (s *Server) apiImport(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	w = s.rolling(w, r)
	r.Body = http.MaxBytesReader(nil, r.Body, maxUpload)
	var body io.Reader = r.Body
	name := r.URL.Query().Get("name")
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		p, err := firstFile(r)
		if err != nil {
			return err
		}
		body, name = p, p.FileName()
	}
	st, err := s.importRecords(r.Context(), u, cleanName(name), body)
	if err != nil {
		return err
	}
	skipped := st.SkippedRecords
	if skipped == nil {
		skipped = []storage.SkippedRecord{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"read": st.Read, "inserted": st.Inserted, "updated": st.Updated,
		"unchanged": st.Unchanged, "repeated": st.Repeated, "skipped": st.Skipped, "skipped_records": skipped})
	return nil
}

func (s *Server) apiExport(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	batch := r.URL.Query().Get("batch")
	if batch != "" {
		if _, err := uuid.Parse(batch); err != nil {
			return chartscan.Errorf(chartscan.EInvalid, "batch must be a batch id")
		}
	}
	if err := s.audit(r.Context(), u.Name, "export", "batch:"+batch, "ok", map[string]any{"format": "jsonl"}); err != nil {
		return err
	}
	w = s.rolling(w, r)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="chartscan-export.jsonl"`)
	enc := json.NewEncoder(w)
	n := 0
	err := s.cfg.Store.Export(r.Context(), batch, func(row storage.ExportRow) error { n++; return enc.Encode(row) })
	if err != nil && n > 0 {
		// The status line is gone; cutting the stream short is all that is left to say.
		panic(http.ErrAbortHandler)
	}
	return err
}

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	us, err := s.cfg.Store.Users(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
	return nil
}

func (s *Server) createUser(ctx context.Context, admin *storage.User, name, role, password string) (storage.User, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n/") {
		return storage.User{}, chartscan.Errorf(chartscan.EInvalid, "a user name is 1–64 characters without spaces or slashes")
	}
	if !ValidRole(role) {
		return storage.User{}, chartscan.Errorf(chartscan.EInvalid, "role must be clerk, reviewer or admin")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return storage.User{}, err
	}
	nu, err := s.cfg.Store.CreateUser(ctx, name, role, hash)
	if err != nil {
		return nu, err
	}
	s.auditLogged(ctx, admin.Name, "user.create", "user:"+name, "ok", map[string]any{"role": role})
	return nu, nil
}

func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	var in struct {
		Name     string `json:"name"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	nu, err := s.createUser(r.Context(), u, in.Name, in.Role, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, nu)
	return nil
}

func (s *Server) updateUser(ctx context.Context, admin *storage.User, id int64, role string, disabled bool) (storage.User, error) {
	if !ValidRole(role) {
		return storage.User{}, chartscan.Errorf(chartscan.EInvalid, "role must be clerk, reviewer or admin")
	}
	if id == admin.ID && (disabled || role != RoleAdmin) {
		return storage.User{}, chartscan.Errorf(chartscan.EInvalid, "you cannot demote or disable yourself; ask another admin")
	}
	nu, err := s.cfg.Store.UpdateUser(ctx, id, role, disabled)
	if err != nil {
		return nu, err
	}
	s.auditLogged(ctx, admin.Name, "user.update", "user:"+nu.Name, "ok", map[string]any{"role": role, "disabled": disabled})
	return nu, nil
}

func (s *Server) apiUpdateUser(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return chartscan.Errorf(chartscan.ENotFound, "no such user")
	}
	var in struct {
		Role     string `json:"role"`
		Disabled bool   `json:"disabled"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	nu, err := s.updateUser(r.Context(), u, id, in.Role, in.Disabled)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nu)
	return nil
}

// createToken makes an API token for a user, lasting days, and records it. The token
// is returned to show once; only its hash is kept.
func (s *Server) createToken(ctx context.Context, admin *storage.User, name, label string, days int) (string, storage.Token, error) {
	expires, err := TokenExpiry(days)
	if err != nil {
		return "", storage.Token{}, err
	}
	tok, hash := NewToken()
	t, err := s.cfg.Store.CreateToken(ctx, name, hash, label, expires)
	if err != nil {
		return "", t, err
	}
	s.auditLogged(ctx, admin.Name, "token.create", "user:"+t.User, "ok", map[string]any{"token_id": t.ID, "label": label,
		"expires": t.ExpiresAt.UTC().Format(time.RFC3339)})
	return tok, t, nil
}

// revokeToken ends an API token at once and records it.
func (s *Server) revokeToken(ctx context.Context, admin *storage.User, id string) (storage.Token, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return storage.Token{}, chartscan.Errorf(chartscan.ENotFound, "no such API token")
	}
	t, err := s.cfg.Store.RevokeToken(ctx, n)
	if err != nil {
		return t, err
	}
	s.auditLogged(ctx, admin.Name, "token.revoke", "user:"+t.User, "ok", map[string]any{"token_id": t.ID, "label": t.Label})
	return t, nil
}

func (s *Server) apiTokens(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	ts, err := s.cfg.Store.Tokens(r.Context(), r.URL.Query().Get("user"))
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []storage.Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
	return nil
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	t, err := s.revokeToken(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func auditQuery(r *http.Request) storage.AuditQuery {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	return storage.AuditQuery{Actor: q.Get("actor"), Action: q.Get("action"), Object: q.Get("object"), BeforeID: before, Limit: 100}
}

// auditView is an audit entry as the API shows it.
type auditView struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Object  string         `json:"object"`
	Outcome string         `json:"outcome"`
	Detail  map[string]any `json:"detail"`
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	es, err := s.cfg.Store.AuditEntries(r.Context(), auditQuery(r))
	if err != nil {
		return err
	}
	out := []auditView{}
	for _, e := range es {
		out = append(out, auditView(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
	return nil
}
