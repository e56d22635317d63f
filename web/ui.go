package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// statusOrder is the order statuses are listed in, final and filed ones first.
var statusOrder = []chartscan.PageStatus{chartscan.StatusAuto, chartscan.StatusConfirmed, chartscan.StatusReview,
	chartscan.StatusUnmatched, chartscan.StatusBlank, chartscan.StatusSeparator, chartscan.StatusFailed, chartscan.StatusPending}

var docTypes = []string{chartscan.DocTypeProgressNote, chartscan.DocTypeDischargeSummary, chartscan.DocTypeLab,
	chartscan.DocTypeRadiology, chartscan.DocTypeOperative, chartscan.DocTypeConsent, chartscan.DocTypeNursing}

// fieldKinds are the extracted fields a reviewer sees and may correct, in order.
var fieldKinds = []chartscan.IdentifierKind{chartscan.KindMRN, chartscan.KindName, chartscan.KindDOB, chartscan.KindSex,
	chartscan.KindDocType, chartscan.KindDateOfService}

var fieldWords = map[chartscan.IdentifierKind]string{chartscan.KindMRN: "medical record number", chartscan.KindName: "patient name",
	chartscan.KindDOB: "date of birth", chartscan.KindSex: "sex", chartscan.KindDocType: "document type", chartscan.KindDateOfService: "date of service"}

var funcs = template.FuncMap{
	"statuses": func() []chartscan.PageStatus { return statusOrder },
	"docTypes": func() []string { return docTypes },
	"label":    func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	// fieldWords names an extracted field in words, as a screen reader should read it.
	"fieldWords": func(kind string) string {
		if w, ok := fieldWords[chartscan.IdentifierKind(kind)]; ok {
			return w
		}
		return strings.ReplaceAll(kind, "_", " ")
	},
	"time": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	// imageURL is a page image's versioned URL, which the browser may keep for the session.
	"imageURL": pageImageURL,
	// displayImageURL is the same for the rendition shown on screen (images.go).
	"displayImageURL": displayImageURL,
	"add":             func(a, b int) int { return a + b },
	"sub":             func(a, b int) int { return a - b },
	"pct":             func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"score":           func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"rate":            func(f float64) string { return strconv.FormatFloat(f*100, 'f', 2, 64) + "%" },
	"allowed":         func(u *storage.User, role string) bool { return u != nil && allowed(u.Role, []string{role}) },
	// mark turns the « » that the search puts around matches into <mark>, escaping the rest.
	"mark": func(s string) template.HTML {
		s = template.HTMLEscapeString(s)
		s = strings.ReplaceAll(s, "«", "<mark>")
		return template.HTML(strings.ReplaceAll(s, "»", "</mark>"))
	},
	"json": func(m map[string]any) string {
		var b strings.Builder
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%v", k, m[k])
		}
		return b.String()
	},
}

func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", base, err)
		}
		out[base] = t
	}
	return out, nil
}

// page is what every template gets: the user, the CSRF token for its forms, and its data.
type page struct {
	Title  string
	User   *storage.User
	CSRF   string
	Review int // pages waiting for review, for the navigation
	Data   map[string]any
}

// render executes a page template into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, u *storage.User, data map[string]any) {
	p := page{User: u, CSRF: csrfToken(r), Data: data}
	if t, ok := data["Title"].(string); ok {
		p.Title = t
	}
	if u != nil && allowed(u.Role, reviewers) {
		p.Review, _ = s.cfg.Store.ReviewCount(r.Context())
	}
	var buf bytes.Buffer
	t := s.pages[name]
	if t == nil {
		t = s.pages["error"]
	}
	if err := t.Execute(&buf, p); err != nil {
		s.log.Error("template failed", "template", name, "error", err)
		http.Error(w, "an internal error occurred", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	s.loginPage(w, r, http.StatusOK, "")
	return nil
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomString(18)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 1800})
	*r = *r.WithContext(context.WithValue(r.Context(), csrfKey, tok))
	s.render(w, r, status, "login", nil, map[string]any{"Title": "Sign in", "Next": safeNext(r.FormValue("next")), "Error": msg})
}

func (s *Server) uiLoginPost(w http.ResponseWriter, r *http.Request, _ *storage.User) error {
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || r.PostFormValue("csrf") != c.Value {
		s.loginPage(w, r, http.StatusForbidden, "The sign-in form expired; please try again.")
		return nil
	}
	u, err := s.login(w, r, strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password"))
	if err != nil {
		e, status := classify(err)
		s.loginPage(w, r, status, e.Message)
		return nil
	}
	next := safeNext(r.PostFormValue("next"))
	if next == "/" {
		next = home(u)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func home(u *storage.User) string {
	switch u.Role {
	case RoleClerk:
		return "/upload"
	case RoleReviewer:
		return "/review"
	}
	return "/batches"
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := s.cfg.Store.DeleteSession(r.Context(), tokenHash(c.Value)); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
	// Page images the browser kept for the session go with it.
	w.Header().Set("Clear-Site-Data", `"cache"`)
	s.auditLogged(r.Context(), u.Name, "logout", "user:"+u.Name, "ok", nil)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (s *Server) uiHome(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	http.Redirect(w, r, home(u), http.StatusSeeOther)
	return nil
}

func (s *Server) uiUpload(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	s.render(w, r, http.StatusOK, "upload", u, map[string]any{"Title": "Upload scans"})
	return nil
}

func (s *Server) uiBatches(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	bs, err := s.cfg.Store.Batches(r.Context(), ownerFilter(u), 200)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "batches", u, map[string]any{"Title": "Batches", "Batches": bs})
	return nil
}

func (s *Server) uiBatch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	b, p, docs, err := s.batchDetail(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "batch", u, map[string]any{"Title": "Batch " + b.ID[:8], "Batch": b, "Progress": p, "Documents": docs,
		"Flash": r.URL.Query().Get("flash")})
	return nil
}

func (s *Server) uiRerun(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	id := r.PathValue("id")
	if err := s.rerun(r.Context(), u, id); err != nil {
		return err
	}
	back := "/batches"
	if b := r.PostFormValue("batch"); b != "" {
		back = "/batches/" + url.PathEscape(b) + "?flash=" + url.QueryEscape("the document is queued again")
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

func (s *Server) uiReviewNext(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	skip, err := s.skips(r, storage.QueueReview)
	if err != nil {
		return err
	}
	out, err := s.outcomeOf(r.Context(), u, doneIDs(r)...)
	if err != nil {
		return err
	}
	k, ok, err := s.cfg.Store.NextReview(r.Context(), skip)
	if err != nil {
		return err
	}
	if !ok {
		s.render(w, r, http.StatusOK, "review", u, map[string]any{"Title": "Review queue", "Empty": true, "Skipped": len(skip),
			"Outcome": out})
		return nil
	}
	return s.reviewItem(w, r, u, k, itemView{outcome: out})
}

func (s *Server) uiReviewItem(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	v := itemView{query: strings.TrimSpace(r.URL.Query().Get("q"))}
	if v.outcome, err = s.outcomeOf(r.Context(), u, doneIDs(r)...); err != nil {
		return err
	}
	if n, _ := strconv.Atoi(r.URL.Query().Get("undone")); n > 1 {
		v.flash = fmt.Sprintf("Your decision on %d pages was undone: each is back as it was before it, with its candidates.", n)
	} else if r.URL.Query().Has("undone") {
		v.flash = "Your decision was undone: the page is back as it was before it, with its candidates."
	}
	return s.reviewItem(w, r, u, k, v)
}

// field is one extracted field on the review form: Value as shown (the reviewer's
// correction, when Edited), Orig as read from the page.
type field struct {
	Kind, Value, Orig, Raw string
	Confidence             float64
	Found, Edited          bool
}

// itemView says how to show a review item besides the page itself.
type itemView struct {
	status   int               // 200 when 0
	errMsg   string            // why a decision on it was refused
	conflict bool              // refused because someone decided it first: it is shown decided
	flash    string            // a fixed message (after an undo)
	outcome  *outcome          // what the previous decision did
	fields   map[string]string // the reviewer's corrections (kind → value), kept across forms
	rescore  bool              // rank the candidates again against the corrections
	query    string            // an EMPI search
	pick     string            // a search result's MRN, to confirm before assigning
}

// reviewItem renders one review item. A page no longer in review, or one a decision on
// was refused because another reviewer decided first, is shown decided: what was decided,
// by whom, and only "next". With a search result picked, only its confirmation is open.
func (s *Server) reviewItem(w http.ResponseWriter, r *http.Request, u *storage.User, k storage.PageKey, v itemView) error {
	ctx := r.Context()
	d, err := s.viewPage(ctx, u, k, "page.view")
	if err != nil {
		return err
	}
	if v.status == 0 {
		v.status = http.StatusOK
	}
	var fields []field
	edits := map[string]string{}
	for _, kind := range fieldKinds {
		f := field{Kind: string(kind)}
		for _, id := range d.Identifiers {
			if id.Kind == kind {
				f.Value, f.Raw, f.Confidence, f.Found = id.Value, id.Raw, id.Confidence, true
			}
		}
		f.Orig = f.Value
		if c, ok := v.fields[string(kind)]; ok && c != f.Orig {
			f.Value, f.Edited = c, true
			edits[string(kind)] = c
		}
		fields = append(fields, f)
	}
	data := map[string]any{"Title": "Review", "Item": d, "Fields": fields, "Error": v.errMsg, "Flash": v.flash,
		"Outcome": v.outcome, "Candidates": d.Candidates, "CandidateKeys": true, "Query": v.query}
	switch {
	case d.PrevMRN != "":
	case d.Number == 1:
		data["PrevWhy"] = "C is not available: this is the first page of the document, so there is no page before it to continue."
	default:
		data["PrevWhy"] = "C is not available: the page before this one is not filed to a patient yet. Decide it first, or choose the patient here."
	}
	if d.Status != chartscan.StatusReview || v.conflict {
		dec, err := s.decidedOf(ctx, d)
		if err != nil {
			return err
		}
		data["Decided"] = dec
		s.render(w, r, v.status, "review", u, data)
		return nil
	}
	if v.rescore {
		res, err := s.rescore(ctx, u, d, edits)
		switch code := chartscan.ErrorCode(err); {
		case err == nil:
			data["Rescored"], data["Candidates"], data["AsRead"] = res, res.Candidates, data["Candidates"]
			data["Edits"] = len(edits)
		case code == chartscan.EInvalid || s.cfg.Rescore == nil:
			data["Error"] = chartscan.ErrorMessage(err)
		default:
			return err
		}
	}
	if v.pick != "" {
		p, err := s.cfg.Store.Patient(ctx, v.pick)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			data["Error"] = "That MRN is not in the EMPI."
		case err != nil:
			return err
		default:
			data["Pick"] = p
		}
	}
	if !v.rescore && v.pick == "" {
		// Consecutive pages after this one with the same best candidate: A confirms them all.
		run, err := s.runFrom(ctx, d)
		if err != nil {
			return err
		}
		if run != nil {
			data["Run"] = run
		}
	}
	if v.query != "" && data["Pick"] == nil {
		ps, err := s.searchPatients(ctx, u, v.query)
		if err != nil {
			return err
		}
		data["Found"] = ps
		// With search results on screen the number keys choose among them.
		data["CandidateKeys"] = len(ps) == 0
	}
	s.render(w, r, v.status, "review", u, data)
	return nil
}

func (s *Server) uiDecide(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	version, _ := strconv.Atoi(r.PostFormValue("version"))
	action, mrn, _ := strings.Cut(r.PostFormValue("decision"), ":")
	in := decisionInput{Version: version, Action: action, MRN: mrn, Fields: map[string]string{}}
	for _, kind := range fieldKinds {
		v, orig := strings.TrimSpace(r.PostFormValue("field_"+string(kind))), r.PostFormValue("orig_"+string(kind))
		if v != orig {
			in.Fields[string(kind)] = v
		}
	}
	query := strings.TrimSpace(r.PostFormValue("q"))
	// Steps on the way to a decision, which decide nothing: re-scoring against corrected
	// fields (R, or Enter in a field), picking a search result (it asks to confirm), and
	// going back from that.
	switch action {
	case "rescore":
		return s.reviewItem(w, r, u, k, itemView{fields: in.Fields, rescore: true})
	case "pick":
		return s.reviewItem(w, r, u, k, itemView{fields: in.Fields, pick: strings.TrimSpace(mrn), query: query})
	case "back":
		return s.reviewItem(w, r, u, k, itemView{fields: in.Fields, query: query})
	}
	var ids []int64
	if action == "run" {
		ids, err = s.decideRun(r.Context(), u, k, mrn, r.PostForm["run_page"], in.Fields)
	} else {
		var out storage.Decided
		out, err = s.decide(r.Context(), u, k, in)
		ids = []int64{out.ReviewID}
	}
	if err != nil {
		code := chartscan.ErrorCode(err)
		if code != chartscan.EConflict && code != chartscan.EInvalid {
			return err
		}
		_, status := classify(err)
		return s.deskRefused(w, r, u, k, itemView{status: status, errMsg: chartscan.ErrorMessage(err),
			conflict: code == chartscan.EConflict, fields: in.Fields})
	}
	// After a split the page is still to be filed: stay on it, now marked as a new
	// patient's first page.
	return s.afterDecision(w, r, u, k, ids, action == storage.ActionSplit)
}

func label(s string) string { return strings.ReplaceAll(s, "_", " ") }

func (s *Server) uiPage(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	k, err := pageKey(r)
	if err != nil {
		return err
	}
	d, err := s.viewPage(r.Context(), u, k, "page.view")
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "page", u, map[string]any{"Title": fmt.Sprintf("Page %d", k.Page), "Item": d})
	return nil
}

func (s *Server) uiPatients(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	data := map[string]any{"Title": "Patients", "Query": q}
	if q != "" {
		ps, err := s.searchPatients(r.Context(), u, q)
		if err != nil {
			return err
		}
		data["Patients"] = ps
	}
	s.render(w, r, http.StatusOK, "patients", u, data)
	return nil
}

// chartGroup is the pages of one document type and date of service in a patient chart.
type chartGroup struct {
	DocType, DateOfService string
	Pages                  []storage.ChartPage
}

func (s *Server) uiChart(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	p, pages, err := s.chart(r.Context(), u, r.PathValue("mrn"))
	if err != nil {
		return err
	}
	var groups []chartGroup
	for _, pg := range pages {
		if n := len(groups); n == 0 || groups[n-1].DocType != pg.DocType || groups[n-1].DateOfService != pg.DateOfService {
			groups = append(groups, chartGroup{DocType: pg.DocType, DateOfService: pg.DateOfService})
		}
		groups[len(groups)-1].Pages = append(groups[len(groups)-1].Pages, pg)
	}
	s.render(w, r, http.StatusOK, "chart", u, map[string]any{"Title": "Patient chart", "Patient": p, "Groups": groups, "Count": len(pages)})
	return nil
}

func (s *Server) uiSearch(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	q := searchQuery(r)
	data := map[string]any{"Title": "Search", "Q": q}
	if q.Text != "" || q.BatchID != "" || q.Status != "" || q.DocType != "" || q.From != "" || q.To != "" {
		hits, err := s.search(r, u)
		if err != nil {
			if chartscan.ErrorCode(err) != chartscan.EInvalid {
				return err
			}
			data["Error"] = chartscan.ErrorMessage(err)
		}
		data["Hits"], data["Searched"] = hits, true
	}
	s.render(w, r, http.StatusOK, "search", u, data)
	return nil
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, u *storage.User, status int, data map[string]any) error {
	us, err := s.cfg.Store.Users(r.Context())
	if err != nil {
		return err
	}
	ts, err := s.cfg.Store.Tokens(r.Context(), "")
	if err != nil {
		return err
	}
	data["Title"], data["Users"], data["Tokens"], data["Now"] = "Users", us, ts, time.Now()
	data["DefaultDays"], data["MaxDays"] = DefaultTokenDays, MaxTokenDays
	s.render(w, r, status, "users", u, data)
	return nil
}

func (s *Server) uiUsers(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	return s.usersPage(w, r, u, http.StatusOK, map[string]any{"Flash": r.URL.Query().Get("flash")})
}

func (s *Server) uiCreateUser(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	nu, err := s.createUser(r.Context(), u, r.PostFormValue("name"), r.PostFormValue("role"), r.PostFormValue("password"))
	if err != nil {
		if chartscan.ErrorCode(err) == chartscan.EInternal {
			return err
		}
		_, status := classify(err)
		return s.usersPage(w, r, u, status, map[string]any{"Error": chartscan.ErrorMessage(err)})
	}
	http.Redirect(w, r, "/admin/users?flash="+url.QueryEscape("added "+nu.Name+" as "+nu.Role), http.StatusSeeOther)
	return nil
}

func (s *Server) uiUpdateUser(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return chartscan.Errorf(chartscan.ENotFound, "no such user")
	}
	nu, err := s.updateUser(r.Context(), u, id, r.PostFormValue("role"), r.PostFormValue("disabled") == "on")
	if err != nil {
		if chartscan.ErrorCode(err) == chartscan.EInternal {
			return err
		}
		_, status := classify(err)
		return s.usersPage(w, r, u, status, map[string]any{"Error": chartscan.ErrorMessage(err)})
	}
	http.Redirect(w, r, "/admin/users?flash="+url.QueryEscape("saved "+nu.Name), http.StatusSeeOther)
	return nil
}

func (s *Server) uiCreateToken(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	days := DefaultTokenDays
	if d := strings.TrimSpace(r.PostFormValue("days")); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			n = -1
		}
		days = n
	}
	tok, t, err := s.createToken(r.Context(), u, r.PostFormValue("name"), strings.TrimSpace(r.PostFormValue("label")), days)
	if err != nil {
		if chartscan.ErrorCode(err) == chartscan.EInternal {
			return err
		}
		_, status := classify(err)
		return s.usersPage(w, r, u, status, map[string]any{"Error": chartscan.ErrorMessage(err)})
	}
	// Shown once, on this response only: it is stored as a hash.
	return s.usersPage(w, r, u, http.StatusOK, map[string]any{"Token": tok, "TokenUser": t.User, "TokenExpires": t.ExpiresAt})
}

func (s *Server) uiRevokeToken(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	t, err := s.revokeToken(r.Context(), u, r.PathValue("id"))
	if err != nil {
		if chartscan.ErrorCode(err) == chartscan.EInternal {
			return err
		}
		_, status := classify(err)
		return s.usersPage(w, r, u, status, map[string]any{"Error": chartscan.ErrorMessage(err)})
	}
	http.Redirect(w, r, "/admin/users?flash="+url.QueryEscape(fmt.Sprintf("revoked token %d of %s", t.ID, t.User)), http.StatusSeeOther)
	return nil
}

func (s *Server) uiEMPI(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	s.render(w, r, http.StatusOK, "empi", u, map[string]any{"Title": "EMPI import"})
	return nil
}

func (s *Server) uiEMPIPost(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	w = s.rolling(w, r)
	r.Body = http.MaxBytesReader(nil, r.Body, maxUpload)
	p, err := firstFile(r)
	if err == nil {
		var st storage.ImportStats
		st, err = s.importRecords(r.Context(), u, cleanName(p.FileName()), p)
		if err == nil {
			s.render(w, r, http.StatusOK, "empi", u, map[string]any{"Title": "EMPI import", "Stats": st, "File": cleanName(p.FileName())})
			return nil
		}
	}
	if chartscan.ErrorCode(err) == chartscan.EInternal {
		return err
	}
	_, status := classify(err)
	s.render(w, r, status, "empi", u, map[string]any{"Title": "EMPI import", "Error": chartscan.ErrorMessage(err)})
	return nil
}

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	q := auditQuery(r)
	es, err := s.cfg.Store.AuditEntries(r.Context(), q)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Audit log", "Q": q, "Entries": es}
	if len(es) == q.Limit {
		data["Older"] = es[len(es)-1].ID
	}
	if r.URL.Query().Get("verify") != "" {
		c, err := s.cfg.Store.VerifyAuditChain(r.Context())
		if err != nil {
			return err
		}
		data["Verified"], data["Bad"], data["Checked"], data["Reason"] = true, c.BadID, c.Entries, c.Reason
		data["Keyed"], data["Unkeyed"] = c.Keyed, c.Unkeyed
	}
	s.render(w, r, http.StatusOK, "audit", u, data)
	return nil
}

// uiCoversheet prints a patient cover sheet: clerks put one on top of each chart before
// scanning, and the barcode files the pages behind it. The sheet shows the patient's
// name and birth date, so every lookup is audited like a view, found or not, and rate
// limited per user.
//
// A clerk may not read patients, so a clerk gives the MRN, family name and birth date
// from the chart in hand and gets a sheet only when all three match one patient; an
// unknown MRN and a mismatch get the same answer. Guessing MRNs then shows a clerk
// nothing they did not already know, and a mistyped MRN is caught before it files a
// chart to someone else. Reviewers and admins, who may read the EMPI, need the MRN only.
func (s *Server) uiCoversheet(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	if s.cfg.Coversheet == nil {
		return chartscan.Errorf(chartscan.ENotFound, "cover sheets are not available on this server")
	}
	ctx := r.Context()
	q := r.URL.Query()
	mrn, family, dob := strings.TrimSpace(q.Get("mrn")), strings.TrimSpace(q.Get("family")), strings.TrimSpace(q.Get("dob"))
	readsPatients := allowed(u.Role, reviewers)
	if mrn == "" || len(mrn) > 64 || len(family) > 200 || len(dob) > 20 {
		return chartscan.Errorf(chartscan.EInvalid, "give the MRN of the patient the cover sheet is for")
	}
	if !readsPatients && (family == "" || dob == "") {
		return chartscan.Errorf(chartscan.EInvalid, "give the MRN, family name and birth date as they are on the chart")
	}
	object := "patient:" + mrn
	keys := []string{"look:" + strconv.FormatInt(u.ID, 10), "miss:" + strconv.FormatInt(u.ID, 10)}
	if !s.covers.reserve(keys...) {
		s.auditLogged(ctx, u.Name, "coversheet.print", object, "denied", map[string]any{"reason": "rate limited"})
		return chartscan.Errorf(eRateLimited, "too many cover sheets asked for; wait a minute and try again")
	}
	p, err := s.cfg.Store.Patient(ctx, mrn)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.covers.refund(keys...)
		return err
	}
	known := err == nil
	if !known || !s.sameAsChart(p, family, dob, !readsPatients) {
		why := "unknown MRN"
		if known {
			why = "family name or birth date differ"
		}
		if err := s.audit(ctx, u.Name, "coversheet.print", object, "not_found", map[string]any{"reason": why}); err != nil {
			return err
		}
		switch {
		case !readsPatients:
			return chartscan.Errorf(chartscan.ENotFound, "no patient in the EMPI has this MRN, family name and birth date; check them on the chart")
		case !known:
			return chartscan.Errorf(chartscan.ENotFound, "no patient with that MRN in the EMPI")
		}
		return chartscan.Errorf(chartscan.ENotFound, "the patient with that MRN has another family name or birth date in the EMPI")
	}
	s.covers.refund(keys[1]) // a hit is no miss
	docType, dos := q.Get("doc"), q.Get("dos")
	var buf bytes.Buffer
	if err := s.cfg.Coversheet(&buf, p, docType, dos); err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "the cover sheet could not be made: check the document type and date")
	}
	if err := s.audit(ctx, u.Name, "coversheet.print", "patient:"+p.MRN, "ok", map[string]any{"doc_type": docType}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="coversheet.pdf"`)
	w.Header().Set("Cache-Control", "private, no-store")
	_, err = w.Write(buf.Bytes())
	return err
}

// sameAsChart reports whether the family name and birth date given from a chart (either
// may be empty when the caller may read patients) agree with p. A field the EMPI lacks
// cannot disagree, a partial birth date (1975, 1975-03) agrees with the full dates in
// it, and a clerk (confirm) must have at least one field confirmed, not just unopposed.
func (s *Server) sameAsChart(p chartscan.Patient, family, dob string, confirm bool) bool {
	nameKey := s.cfg.NameKey(p.Family)
	nameOK := family == "" || nameKey == "" || s.cfg.NameKey(family) == nameKey
	birthOK := dob == "" || p.BirthDate == "" || dob == p.BirthDate ||
		(len(p.BirthDate) < len("2006-01-02") && strings.HasPrefix(dob, p.BirthDate+"-"))
	confirmed := (family != "" && nameKey != "") || (dob != "" && p.BirthDate != "")
	return nameOK && birthOK && (!confirm || confirmed)
}

// lettersAndDigits is the default Config.NameKey: a name's letters and digits, lower
// case, without diacritics ("Núñez-O'Brien" → "nunezobrien").
func lettersAndDigits(name string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)))
	if folded, _, err := transform.String(t, name); err == nil {
		name = folded
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, name)
}
