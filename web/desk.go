package web

import (
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
	id, _ := strconv.ParseInt(r.PostFormValue("review"), 10, 64)
	if _, err := s.undo(r.Context(), u, k, id); err != nil {
		code := chartscan.ErrorCode(err)
		if code != chartscan.EConflict {
			return err
		}
		_, status := classify(err)
		return s.reviewItem(w, r, u, k, itemView{status: status, errMsg: chartscan.ErrorMessage(err)})
	}
	http.Redirect(w, r, fmt.Sprintf("/review/%s?undone=%d", k, id), http.StatusSeeOther)
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
	Key      storage.PageKey
	UndoLeft int // seconds left to undo it; 0: it cannot be undone any more
	Undone   bool
}

// outcomeOf reads a decision for the message after it: only its own reviewer is told.
func (s *Server) outcomeOf(ctx context.Context, u *storage.User, id int64) (*outcome, error) {
	rec, err := s.cfg.Store.Review(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (rec.ActorID != u.ID || rec.Action == storage.ActionUndo)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o := &outcome{ReviewID: rec.ID, Key: rec.PageKey, MRN: rec.MRN, Undone: rec.Undone}
	page := fmt.Sprintf("Page %d of %s", rec.Page, rec.FileName)
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
	if rec.Undoable && !rec.Undone && rec.Latest && rec.Age < UndoWindow {
		o.UndoLeft = max(1, int((UndoWindow-rec.Age)/time.Second))
	}
	return o, nil
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
