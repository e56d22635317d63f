package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// The reviewer's desk (issue 13): re-scoring after a correction, undoing a decision,
// skips kept on the server, and what a decision did, named.

// UndoWindow is how long after a decision its reviewer may undo it.
const UndoWindow = time.Minute

// maxFieldLen bounds a corrected field; maxFields how many a request may carry.
const (
	maxFieldLen = 200
	maxFields   = 20
)

// checkFields refuses corrected fields that are too long or too many.
func checkFields(fields map[string]string) error {
	if len(fields) > maxFields {
		return chartscan.Errorf(chartscan.EInvalid, "corrected fields are too long")
	}
	for f, v := range fields {
		if len(f) > 40 || len(v) > maxFieldLen {
			return chartscan.Errorf(chartscan.EInvalid, "corrected fields are too long")
		}
	}
	return nil
}

// corrected returns the page's identifiers with the reviewer's corrections applied: a
// corrected field replaces what was read (the reviewer is sure of it), an emptied one
// removes it. Only the review form's fields count.
func corrected(ids []chartscan.Identifier, fields map[string]string) []chartscan.Identifier {
	out := slices.Clone(ids)
	for _, kind := range fieldKinds {
		v, ok := fields[string(kind)]
		if !ok {
			continue
		}
		out = slices.DeleteFunc(out, func(id chartscan.Identifier) bool { return id.Kind == kind })
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, chartscan.Identifier{Kind: kind, Value: v, Raw: v, Confidence: 1})
		}
	}
	return out
}

// rescored is a page's candidates scored again against corrected fields.
type rescored struct {
	Status     chartscan.PageStatus      `json:"status"`
	Reason     string                    `json:"reason,omitempty"`
	Candidates []storage.RankedCandidate `json:"candidates"`
}

// rescore scores a page's candidates again against the fields as the reviewer corrected
// them (kind → value) and returns the new ranking with each candidate's EMPI record. It
// decides nothing and saves nothing; the look-up is audited, as an EMPI search is.
func (s *Server) rescore(ctx context.Context, u *storage.User, d storage.PageDetail, fields map[string]string) (rescored, error) {
	if err := checkFields(fields); err != nil {
		return rescored{}, err
	}
	if s.cfg.Rescore == nil {
		return rescored{}, chartscan.Errorf(chartscan.EInternal, "re-scoring is not available on this server")
	}
	var also []string
	for _, c := range d.Candidates {
		also = append(also, c.MRN)
	}
	f, err := s.cfg.Rescore(ctx, corrected(d.Identifiers, fields), also)
	if err != nil {
		return rescored{}, err
	}
	out := rescored{Status: f.Status, Reason: f.Reason, Candidates: []storage.RankedCandidate{}}
	if f.Status == chartscan.StatusAuto {
		// On a page in review "auto" means: the corrected fields point at one patient clearly.
		out.Reason = "with the corrections the best candidate stands clear"
	}
	for _, c := range f.Candidates {
		rc := storage.RankedCandidate{Candidate: c}
		p, err := s.cfg.Store.Patient(ctx, c.MRN)
		switch {
		case err == nil:
			rc.Patient = p
		case !errors.Is(err, storage.ErrNotFound):
			return rescored{}, err
		}
		out.Candidates = append(out.Candidates, rc)
	}
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	detail := map[string]any{"fields": strings.Join(kinds, ","), "results": len(out.Candidates)}
	for k, v := range fields {
		detail["field_"+k] = v
	}
	return out, s.audit(ctx, u.Name, "review.rescore", "page:"+storage.PageKey{DocumentID: d.DocumentID, Page: d.Number}.String(), "ok", detail)
}

func (s *Server) apiRescore(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	var in struct {
		Fields map[string]string `json:"fields"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	d, err := s.viewPage(r.Context(), u, k, "page.view")
	if err != nil {
		return err
	}
	out, err := s.rescore(r.Context(), u, d, in.Fields)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// undo undoes a reviewer's own decision, audited like a decision; the document's other
// pages are filed again, as after a decision, so the pages that followed the undone one
// follow it no more.
func (s *Server) undo(ctx context.Context, u *storage.User, k storage.PageKey, reviewID int64) (storage.Undone, error) {
	out, err := s.cfg.Store.UndoDecision(ctx, storage.Undo{PageKey: k, ReviewID: reviewID, ActorID: u.ID, Actor: u.Name, Within: UndoWindow})
	outcome := "ok"
	if err != nil {
		outcome = chartscan.ErrorCode(err)
		if outcome == chartscan.EConflict || outcome == chartscan.ENotFound {
			s.auditLogged(ctx, u.Name, "review.undo", "page:"+k.String(), "denied",
				map[string]any{"undone_review_id": reviewID, "reason": chartscan.ErrorMessage(err)})
		}
	}
	s.metrics.decisions.WithLabelValues(storage.ActionUndo, outcome).Inc()
	if err == nil && s.cfg.Refile != nil {
		if rerr := s.cfg.Refile(ctx, k.DocumentID); rerr != nil && chartscan.ErrorCode(rerr) != chartscan.EConflict {
			s.log.WarnContext(ctx, "re-filing after an undo failed", "document_id", k.DocumentID, "error", rerr)
		}
	}
	return out, err
}

func (s *Server) apiUndo(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	var in struct {
		ReviewID int64 `json:"review_id"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	out, err := s.undo(r.Context(), u, k, in.ReviewID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) uiUndo(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "a bad form")
	}
	ids := r.PostForm["review"]
	if len(ids) == 0 || len(ids) > maxRun {
		ids = []string{""}
	}
	// A run is undone page by page, its last page first; each undo is audited.
	for i := len(ids) - 1; i >= 0; i-- {
		id, _ := strconv.ParseInt(ids[i], 10, 64)
		pk := k
		if i > 0 {
			rec, err := s.cfg.Store.Review(r.Context(), id)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if err == nil && rec.DocumentID == k.DocumentID {
				pk = rec.PageKey
			}
		}
		if _, err := s.undo(r.Context(), u, pk, id); err != nil {
			code := chartscan.ErrorCode(err)
			if code != chartscan.EConflict {
				return err
			}
			_, status := classify(err)
			return s.reviewItem(w, r, u, k, itemView{status: status, errMsg: chartscan.ErrorMessage(err)})
		}
	}
	http.Redirect(w, r, fmt.Sprintf("/review/%s?undone=%d", k, len(ids)), http.StatusSeeOther)
	return nil
}

// sessionHash names the signed-in browser session a request belongs to, for the skips
// kept with it; "" for a request with an API token.
func sessionHash(r *http.Request) string {
	if r.Header.Get("Authorization") != "" {
		return ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	return tokenHash(c.Value)
}

// skips returns the items the session skipped in a queue.
func (s *Server) skips(r *http.Request, queue string) ([]storage.PageKey, error) {
	h := sessionHash(r)
	if h == "" {
		return nil, nil
	}
	return s.cfg.Store.Skips(r.Context(), h, queue)
}

// uiSkip passes over an item of a queue for the rest of the session: the queue, however
// it is reached (the navigation's link too), does not offer it again until "start over".
func (s *Server) uiSkip(queue string) handler {
	return func(w http.ResponseWriter, r *http.Request, u *storage.User) error {
		k, err := pageKey(r)
		if err != nil {
			return err
		}
		h := sessionHash(r)
		if h == "" {
			return chartscan.Errorf(chartscan.EInvalid, "skipping needs a signed-in session")
		}
		if err := s.cfg.Store.Skip(r.Context(), h, queue, k); err != nil {
			return err
		}
		if queue == storage.QueueReview {
			return s.afterDecision(w, r, u, k, nil, false)
		}
		http.Redirect(w, r, "/"+queue, http.StatusSeeOther)
		return nil
	}
}

// uiStartOver forgets the session's skips in a queue.
func (s *Server) uiStartOver(queue string) handler {
	return func(w http.ResponseWriter, r *http.Request, u *storage.User) error {
		if h := sessionHash(r); h != "" {
			if err := s.cfg.Store.ClearSkips(r.Context(), h, queue); err != nil {
				return err
			}
		}
		http.Redirect(w, r, "/"+queue, http.StatusSeeOther)
		return nil
	}
}

// outcome is what the previous decision did, as the next screen tells its reviewer.
type outcome struct {
	Text     string
	Patient  *chartscan.Patient // the patient the page was filed to
	MRN      string
	ReviewID int64
	// ReviewIDs are every decision it names: one, or a run's pages, undone together.
	ReviewIDs []int64
	Key       storage.PageKey
	UndoLeft  int // seconds left to undo it; 0: it cannot be undone any more
	Undone    bool
}

// outcomeOf reads a decision (or a run's decisions, in page order) for the message after
// it: only its own reviewer is told.
func (s *Server) outcomeOf(ctx context.Context, u *storage.User, ids ...int64) (*outcome, error) {
	var recs []storage.ReviewRecord
	for _, id := range ids {
		rec, err := s.cfg.Store.Review(ctx, id)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && (rec.ActorID != u.ID || rec.Action == storage.ActionUndo)) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	rec := recs[0]
	o := &outcome{ReviewID: rec.ID, ReviewIDs: ids, Key: rec.PageKey, MRN: rec.MRN, Undone: rec.Undone}
	page := fmt.Sprintf("Page %d of %s", rec.Page, rec.FileName)
	if len(recs) > 1 {
		page = fmt.Sprintf("Pages %d–%d of %s", rec.Page, recs[len(recs)-1].Page, rec.FileName)
	}
	if rec.Patient.MRN != "" {
		o.Patient = &rec.Patient
	}
	switch rec.Action {
	case storage.ActionConfirm, storage.ActionAssign:
		o.Text = page + " filed to"
	case storage.ActionContinuation:
		o.Text = page + " filed with the page before it to"
	case storage.ActionNotInEMPI:
		o.Text = page + ": the patient is not in the EMPI (unmatched)"
	case storage.ActionSplit:
		o.Text = page + ": the document is split here; a new patient starts on this page"
	default:
		o.Text = page + ": " + label(rec.Action)
	}
	left := UndoWindow
	for _, r := range recs {
		if !r.Undoable || r.Undone || !r.Latest || r.Age >= UndoWindow {
			left = 0
			break
		}
		left = min(left, UndoWindow-r.Age)
		o.Undone = o.Undone || r.Undone
	}
	if left > 0 {
		o.UndoLeft = max(1, int(left/time.Second))
	}
	return o, nil
}

// doneIDs reads the review rows a page names as just decided (?done=, one per page of a run).
func doneIDs(r *http.Request) []int64 {
	var ids []int64
	for _, v := range r.URL.Query()["done"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && len(ids) < maxRun {
			ids = append(ids, id)
		}
	}
	return ids
}

// decidedView is what another reviewer (or the pipeline) made of a page that is no longer
// waiting for this reviewer's decision.
type decidedView struct {
	By      string
	At      time.Time
	Text    string
	Patient *chartscan.Patient
	MRN     string
}

// decidedOf describes the latest decision on a page, or its status when nobody decided it.
func (s *Server) decidedOf(ctx context.Context, d storage.PageDetail) (*decidedView, error) {
	rec, ok, err := s.cfg.Store.LastReview(ctx, d.DocumentID, d.Number)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &decidedView{Text: "This page is no longer waiting for review: it is " + label(string(d.Status)) + "."}, nil
	}
	v := &decidedView{By: rec.Actor, At: rec.DecidedAt, MRN: rec.MRN}
	if rec.Patient.MRN != "" {
		v.Patient = &rec.Patient
	}
	switch rec.Action {
	case storage.ActionConfirm, storage.ActionAssign:
		v.Text = "filed this page to"
	case storage.ActionContinuation:
		v.Text = "filed this page with the page before it to"
	case storage.ActionNotInEMPI:
		v.Text = "found the patient not in the EMPI (unmatched)"
	case storage.ActionSplit:
		v.Text = "split the document here: a new patient starts on this page"
	case storage.ActionUndo:
		v.Text = "undid the decision on this page: it waits for review again"
	default:
		v.Text = label(rec.Action)
	}
	return v, nil
}

// The desk's speed (issue 13, items 5–7): the next item preloaded while the reviewer looks
// at this one, decisions sent without leaving the page, EMPI search in place, runs of
// pages confirmed at once.
//
// Views are audited as every view is: the server records page.view when it sends a
// page's data to the browser and page.image when it sends its image, whatever asked for
// it. A preloaded item is sent once and shown from what was sent. The one thing a
// decision changes on the next page of its document — whether C can continue it — the
// desk's script sets as the server would.

// deskRequest reports whether the desk's script sent the request and wants JSON back
// instead of a page or a redirect.
func deskRequest(r *http.Request) bool { return r.Header.Get("X-Chartscan-Desk") == "1" }

// bufferWriter catches a rendered page for a JSON answer.
type bufferWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.h }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
func (b *bufferWriter) WriteHeader(status int)      { b.status = status }

// renderItem renders a review item (or the empty queue, when ok is false) to HTML.
func (s *Server) renderItem(r *http.Request, u *storage.User, k storage.PageKey, ok bool, v itemView, skipped int) (string, int, error) {
	bw := &bufferWriter{h: http.Header{}}
	if !ok {
		s.render(bw, r, http.StatusOK, "review", u, map[string]any{"Title": "Review queue", "Empty": true, "Skipped": skipped,
			"Outcome": v.outcome})
	} else if err := s.reviewItem(bw, r, u, k, v); err != nil {
		return "", 0, err
	}
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	return bw.buf.String(), bw.status, nil
}

// deskAnswer is what the desk's script gets after a decision or a skip: the next item's
// key, and either its page (HTML) or leave to show the item it preloaded, with the
// outcome of the decision to put on it.
type deskAnswer struct {
	Next         string `json:"next"`                    // "doc/page" of the item to show; "" the empty queue
	HTML         string `json:"html,omitempty"`          // the item to show, when not the preloaded one
	UsePreloaded bool   `json:"use_preloaded,omitempty"` // show the item preloaded, with Outcome
	Outcome      string `json:"outcome,omitempty"`       // HTML of what the decision did
	Status       int    `json:"status"`                  // the page's HTTP status, as a full page would have had
}

// preloadKey parses the desk's "doc/page/version" of the item it preloaded.
func preloadKey(v string) (storage.PageKey, int, bool) {
	parts := strings.Split(v, "/")
	if len(parts) != 3 {
		return storage.PageKey{}, 0, false
	}
	n, err1 := strconv.Atoi(parts[1])
	ver, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || parts[0] == "" {
		return storage.PageKey{}, 0, false
	}
	return storage.PageKey{DocumentID: parts[0], Page: n}, ver, true
}

// afterDecision answers a decision (ids: its review rows, none after a skip): a redirect
// for a form, JSON for the desk's script. stay keeps the reviewer on the page decided (a
// split: the page is still to be filed).
func (s *Server) afterDecision(w http.ResponseWriter, r *http.Request, u *storage.User, k storage.PageKey, ids []int64, stay bool) error {
	done := ""
	for _, id := range ids {
		done += "&done=" + strconv.FormatInt(id, 10)
	}
	if !deskRequest(r) {
		switch {
		case stay:
			http.Redirect(w, r, fmt.Sprintf("/review/%s?%s", k, strings.TrimPrefix(done, "&")), http.StatusSeeOther)
		case done != "":
			http.Redirect(w, r, "/review?"+strings.TrimPrefix(done, "&"), http.StatusSeeOther)
		default:
			http.Redirect(w, r, "/review", http.StatusSeeOther)
		}
		return nil
	}
	ctx := r.Context()
	out, err := s.outcomeOf(ctx, u, ids...)
	if err != nil {
		return err
	}
	next, ok := k, true
	var skip []storage.PageKey
	if !stay {
		if skip, err = s.skips(r, storage.QueueReview); err != nil {
			return err
		}
		if next, ok, err = s.cfg.Store.NextReview(ctx, skip); err != nil {
			return err
		}
	}
	ans := deskAnswer{Status: http.StatusOK}
	if ok {
		ans.Next = next.String()
	}
	// The preloaded item stands if it is the queue's next and still as it was sent (the
	// re-filing the decision queued may change it later, as it may any item on screen).
	if pk, ver, pok := preloadKey(r.PostFormValue("preloaded")); pok && ok && !stay && pk == next {
		d, err := s.cfg.Store.PageDetail(ctx, pk.DocumentID, pk.Page)
		if err == nil && d.Version == ver && d.Status == chartscan.StatusReview {
			ans.UsePreloaded = true
			if out != nil {
				var buf bytes.Buffer
				if err := s.pages["review"].ExecuteTemplate(&buf, "outcome", page{User: u, CSRF: csrfToken(r),
					Data: map[string]any{"Outcome": out}}); err != nil {
					return err
				}
				ans.Outcome = buf.String()
			}
			writeJSON(w, http.StatusOK, ans)
			return nil
		}
	}
	if ans.HTML, ans.Status, err = s.renderItem(r, u, next, ok, itemView{outcome: out}, len(skip)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// deskRefused answers a decision that was refused (someone decided first, or it was not
// valid): the item shown with why, as a page or as JSON for the desk's script.
func (s *Server) deskRefused(w http.ResponseWriter, r *http.Request, u *storage.User, k storage.PageKey, v itemView) error {
	if !deskRequest(r) {
		return s.reviewItem(w, r, u, k, v)
	}
	html, status, err := s.renderItem(r, u, k, true, v, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deskAnswer{Next: k.String(), HTML: html, Status: status})
	return nil
}

// preloaded is the item after one, as the desk's script preloads it.
type preloaded struct {
	Key     string `json:"key"`            // "" when nothing else waits
	Version int    `json:"version"`        // the page version sent
	Image   string `json:"image"`          // its image's versioned URL, to fetch now
	HTML    string `json:"html,omitempty"` // the item
}

// uiPreload returns the item the queue offers after this one (the session's skips and
// this one left out), for the desk to show at once after the decision on this one.
func (s *Server) uiPreload(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	skip, err := s.skips(r, storage.QueueReview)
	if err != nil {
		return err
	}
	next, ok, err := s.cfg.Store.NextReview(ctx, append(skip, k))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "private, no-store")
	if !ok {
		writeJSON(w, http.StatusOK, preloaded{})
		return nil
	}
	d, err := s.cfg.Store.PageDetail(ctx, next.DocumentID, next.Page)
	if err != nil {
		return err
	}
	out := preloaded{Key: next.String(), Version: d.Version, Image: displayImageURL(d)}
	// Sent now, so audited now (page.view), once: the desk shows it from here.
	if out.HTML, _, err = s.renderItem(r, u, next, true, itemView{}, 0); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// uiDeskSearch searches the EMPI from a review item without leaving it: the results as
// HTML to put in place, each with its number key (issue 13, item 6). Audited as every
// patient search is.
func (s *Server) uiDeskSearch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	if _, err := pageKey(r); err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > maxFieldLen {
		return chartscan.Errorf(chartscan.EInvalid, "the search is too long")
	}
	var ps []chartscan.Patient
	if q != "" {
		var err error
		if ps, err = s.searchPatients(r.Context(), u, q); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := s.pages["review"].ExecuteTemplate(&buf, "found", page{User: u, CSRF: csrfToken(r),
		Data: map[string]any{"Found": ps, "Query": q}}); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, map[string]any{"html": buf.String(), "results": len(ps)})
	return nil
}

// maxRun is the most pages a run confirms in one decision.
const maxRun = 20

// runPage is one page of a run, as its strip shows it.
type runPage struct {
	Number, Version int
	Score           float64
	Thumb           string
	ThumbH          int // the thumbnail's height at 120 pixels wide
}

// thumbHeight is a page's height scaled to a 120-pixel-wide thumbnail.
func thumbHeight(d storage.PageDetail) int {
	if d.Width <= 0 || d.Height <= 0 {
		return 155
	}
	return max(1, 120*d.Height/d.Width)
}

// pageRun is the current page and the consecutive pages after it, in review, whose best
// candidate is the current page's: one decision confirms them all.
type pageRun struct {
	MRN     string
	Patient chartscan.Patient
	Pages   []runPage
}

// runFrom finds the run of pages starting at d. The pages after it are read, not shown:
// their thumbnails are fetched (and audited as page images) by the browser.
func (s *Server) runFrom(ctx context.Context, d storage.PageDetail) (*pageRun, error) {
	if d.Status != chartscan.StatusReview || len(d.Candidates) == 0 {
		return nil, nil
	}
	best := d.Candidates[0]
	run := &pageRun{MRN: best.MRN, Patient: best.Patient,
		Pages: []runPage{{Number: d.Number, Version: d.Version, Score: best.Score, Thumb: pageImageURL(d, 120), ThumbH: thumbHeight(d)}}}
	for n := d.Number + 1; n <= d.PageCount && len(run.Pages) < maxRun; n++ {
		p, err := s.cfg.Store.PageDetail(ctx, d.DocumentID, n)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.Status != chartscan.StatusReview || len(p.Candidates) == 0 || p.Candidates[0].MRN != best.MRN {
			break
		}
		run.Pages = append(run.Pages, runPage{Number: n, Version: p.Version, Score: p.Candidates[0].Score, Thumb: pageImageURL(p, 120), ThumbH: thumbHeight(p)})
	}
	if len(run.Pages) < 2 {
		return nil, nil
	}
	return run, nil
}

// decideRun confirms a run of pages to one patient in one decision: each page a
// decision of its own (its review row, its audit entry), all or none. The pages come as
// "page:version" from the run's strip and must follow one another from k.
func (s *Server) decideRun(ctx context.Context, u *storage.User, k storage.PageKey, mrn string, pages []string, fields map[string]string) ([]int64, error) {
	if err := checkFields(fields); err != nil {
		return nil, err
	}
	mrn = strings.TrimSpace(mrn)
	var ds []storage.Decision
	for i, pv := range pages {
		n, v, ok := strings.Cut(pv, ":")
		page, err1 := strconv.Atoi(n)
		version, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil || page != k.Page+i || i >= maxRun {
			return nil, chartscan.Errorf(chartscan.EInvalid, "a run is consecutive pages from this one, at most %d", maxRun)
		}
		d := storage.Decision{PageKey: storage.PageKey{DocumentID: k.DocumentID, Page: page}, Version: version,
			Action: storage.ActionConfirm, MRN: mrn, ActorID: u.ID, Actor: u.Name}
		if i == 0 {
			d.Fields = fields
		}
		ds = append(ds, d)
	}
	if len(ds) < 2 || mrn == "" {
		return nil, chartscan.Errorf(chartscan.EInvalid, "a run is two pages or more, confirmed to one patient")
	}
	out, err := s.cfg.Store.DecideRun(ctx, ds)
	outcome := "ok"
	if err != nil {
		outcome = chartscan.ErrorCode(err)
		if outcome == chartscan.EConflict || outcome == chartscan.EInvalid {
			s.auditLogged(ctx, u.Name, "review.decide", "page:"+k.String(), "denied",
				map[string]any{"action": "run", "pages": len(ds), "reason": chartscan.ErrorMessage(err)})
		}
	}
	s.metrics.decisions.WithLabelValues(storage.ActionConfirm, outcome).Add(float64(len(ds)))
	if err != nil {
		return nil, err
	}
	if s.cfg.Refile != nil {
		if rerr := s.cfg.Refile(ctx, k.DocumentID); rerr != nil && chartscan.ErrorCode(rerr) != chartscan.EConflict {
			s.log.WarnContext(ctx, "re-filing after a decision failed", "document_id", k.DocumentID, "error", rerr)
		}
	}
	ids := make([]int64, len(out))
	for i, o := range out {
		ids[i] = o.ReviewID
	}
	return ids, nil
}
