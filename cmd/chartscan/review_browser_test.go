package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

// The reviewer's desk (issue 13) in chromium: keys pressed as a reviewer presses them,
// against a seeded queue (no OCR): a document of three pages in review — each patient has
// a near-twin in the EMPI — and one of three pages filed automatically, each drawn for a
// quality check.

type desk struct {
	s        *stack
	srv      *server
	db       *storage.DB
	conn     *pgx.Conn
	ctx      context.Context // the browser
	doc, qa  string          // the review document and the quality-check one
	patients []chartscan.Patient
	twins    []chartscan.Patient // the near-twins of the first three patients
	byMRN    map[string]chartscan.Patient
	docs     []string // the documents of a seeded queue, in queue order (newSeededDesk)
}

func newDesk(t *testing.T) *desk {
	t.Helper()
	ctx := context.Background()
	s := newStack(t)
	d := &desk{s: s, byMRN: map[string]chartscan.Patient{}}
	families := []string{"Abernathy", "Brennan", "Castellano", "Dubois", "Eriksen", "Fujimoto"}
	givens := []string{"Ruth", "Oscar", "Mirela", "Tobias", "Agnes", "Kenji"}
	var csv strings.Builder
	csv.WriteString("mrn,family,given,birth_date,sex\n")
	add := func(p chartscan.Patient) {
		d.byMRN[p.MRN] = p
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s\n", p.MRN, p.Family, p.Given, p.BirthDate, p.Sex)
	}
	for i := range families {
		p := chartscan.Patient{MRN: luhnMRN(5200000 + 41*i), Family: families[i], Given: givens[i],
			BirthDate: fmt.Sprintf("19%02d-%02d-%02d", 41+6*i, 2+i, 4+3*i), Sex: []string{"female", "male"}[i%2]}
		d.patients = append(d.patients, p)
		add(p)
		if i < 3 {
			twin := p
			twin.MRN, twin.Given = luhnMRN(5300000+43*i), p.Given[:len(p.Given)-1]+"y"
			d.twins = append(d.twins, twin)
			add(twin)
		}
	}
	s.importEMPI(csv.String())
	db := s.openDB(ctx)
	d.db, d.conn = db, s.dbConn()
	batch := uuid.NewString()
	if _, err := db.CreateBatch(ctx, chartscan.Batch{ID: batch, Label: "desk"}); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Store: db, Model: indexer.DefaultModel(),
		Pages: worker.PagePolicy{QualityFloor: 50, QARate: 1}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d.doc = d.document(t, w, batch, "desk.pdf", d.patients[:3], chartscan.StatusReview)
	d.qa = d.document(t, w, batch, "checks.pdf", d.patients[3:], chartscan.StatusAuto)
	d.srv = s.startServe()
	d.ctx = browser(t)
	return d
}

// document stores a read document with one page per patient, each showing the patient's
// MRN, name and birth date, files it as the pipeline would and checks each page's status.
func (d *desk) document(t *testing.T, w *worker.Worker, batch, name string, ps []chartscan.Patient, want chartscan.PageStatus) string {
	t.Helper()
	ctx := context.Background()
	db := d.db
	doc, _, err := db.AddDocument(ctx, batch, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(),
		FileName: name, ContentType: "application/pdf", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	sure := func(kind chartscan.IdentifierKind, v string) chartscan.Identifier {
		return chartscan.Identifier{Kind: kind, Value: v, Raw: v, Confidence: 0.96, Box: chartscan.Box{X0: 100, Y0: 100, X1: 900, Y1: 160}}
	}
	for i, p := range ps {
		n := i + 1
		if err := db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: n, ImageKey: "none", ImageType: "image/png", Width: 1700, Height: 2200, DPI: 200}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveOCR(ctx, doc.ID, n, chartscan.Reading{Text: "SYNTHETIC TEST RECORD", Confidence: 92, Quality: 92}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveIdentifiers(ctx, doc.ID, n, []chartscan.Identifier{sure(chartscan.KindMRN, p.MRN),
			sure(chartscan.KindName, strings.ToUpper(p.Family)+", "+p.Given), sure(chartscan.KindDOB, p.BirthDate)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetPageCount(ctx, doc.ID, len(ps)); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveFilings(ctx, doc.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Refile(ctx, doc.ID, false); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= len(ps); n++ {
		if p := d.page(t, doc.ID, n); p.Status != want {
			t.Fatalf("fixture: %s page %d is %s (%s), want %s", name, n, p.Status, p.Reason, want)
		}
	}
	return doc.ID
}

func (d *desk) page(t *testing.T, doc string, n int) storage.PageDetail {
	t.Helper()
	p, err := d.db.PageDetail(context.Background(), doc, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (d *desk) key(n int) string { return fmt.Sprintf("%s/%d", d.doc, n) }

// signInReviewer adds a reviewer and signs the browser in as them.
func (d *desk) signInReviewer(t *testing.T, name string) {
	t.Helper()
	pw := d.s.addUser(name, "reviewer")
	signIn(t, d.ctx, d.srv.url, name, pw)
}

// audits counts the audit entries of an action by an actor.
func (d *desk) audits(t *testing.T, actor, action, outcome string) int {
	t.Helper()
	var n int
	if err := d.conn.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE actor = $1 AND action = $2 AND outcome = $3`,
		actor, action, outcome).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitJS polls a boolean expression across page loads (evaluations fail while a page
// navigates: they are retried).
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](`document.readyState === "complete" && !!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	browserFail(t, ctx, what, context.DeadlineExceeded)
}

// showing waits until the review page shows the item key.
func showing(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	waitJS(t, ctx, "the review page shows "+key, fmt.Sprintf(`(document.getElementById("review-item") || {dataset: {}}).dataset.item === %q`, key))
}

func press(t *testing.T, ctx context.Context, keys string, opts ...chromedp.KeyOption) {
	t.Helper()
	do(t, ctx, fmt.Sprintf("press %q", keys), chromedp.KeyEvent(keys, opts...))
}

func js[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	return get(t, ctx, what, chromedp.Evaluate[T](expr))
}

func candidateMRNs(p storage.PageDetail) []string {
	var out []string
	for _, c := range p.Candidates {
		out = append(out, fmt.Sprintf("%s:%.2f", c.MRN, c.Score))
	}
	return out
}

// Hazard 1: E, correct the MRN to the twin's, Enter. Nothing is decided: the candidates are
// scored again against the corrected fields, and the twin now ranks first.
func TestBrowserReviewEnterInAnEditedFieldDecidesNothing(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	before := d.page(t, d.doc, 1)
	a, twin := d.patients[0], d.twins[0]
	if len(before.Candidates) < 2 || before.Candidates[0].MRN != a.MRN {
		t.Fatalf("fixture: page 1's candidates %v, want %s first and its twin", candidateMRNs(before), a.MRN)
	}
	press(t, ctx, "e")
	if f := js[string](t, ctx, "the focused field", `document.activeElement.dataset.field || ""`); f != "mrn" {
		t.Fatalf("E focused %q, want the MRN field", f)
	}
	press(t, ctx, "a", chromedp.KeyModifiers(chromedp.ModifierCtrl))
	press(t, ctx, twin.MRN)
	press(t, ctx, kb.Enter)
	waitJS(t, ctx, "the candidates are ranked again", `document.getElementById("rescored")`)
	after := d.page(t, d.doc, 1)
	if after.Status != chartscan.StatusReview || after.Version != before.Version || after.MRN != before.MRN {
		t.Fatalf("Enter in an edited field changed the page: %s v%d %s (was %s v%d %s)", after.Status, after.Version, after.MRN,
			before.Status, before.Version, before.MRN)
	}
	if n := d.audits(t, "rita", "review.decide", "ok"); n != 0 {
		t.Errorf("%d decisions audited after Enter in a field, want none", n)
	}
	first := get(t, ctx, "read the first candidate", chromedp.AttributeValue(chromedp.CSS(`button[data-key="1"]`), "value"))
	if first.Value != "confirm:"+twin.MRN {
		t.Errorf("after correcting the MRN the first candidate is %q, want the twin %s", first.Value, twin.MRN)
	}
	if v := js[string](t, ctx, "the MRN field", `document.querySelector('input[data-field="mrn"]').value`); v != twin.MRN {
		t.Errorf("the MRN field reads %q after re-scoring, want the correction %s", v, twin.MRN)
	}
	if tag := js[string](t, ctx, "focus", `document.activeElement.tagName`); tag == "BUTTON" {
		t.Errorf("after re-scoring a button has focus: a second Enter would decide")
	}
	// A second Enter, now outside the fields, decides nothing either.
	press(t, ctx, kb.Enter)
	do(t, ctx, "wait", chromedp.Sleep(700*time.Millisecond))
	if p := d.page(t, d.doc, 1); p.Status != chartscan.StatusReview || p.Version != before.Version {
		t.Fatalf("a second Enter decided the page: %s v%d", p.Status, p.Version)
	}
	// The reviewer chooses the new first candidate: the decision keeps the correction.
	press(t, ctx, "1")
	if msg := waitNextItem(t, ctx, d.key(1)); !strings.Contains(msg, "MRN "+twin.MRN) {
		t.Errorf("outcome %q, want it to name MRN %s", msg, twin.MRN)
	}
	var fields string
	if err := d.conn.QueryRow(context.Background(), `SELECT fields::text FROM reviews WHERE document_id = $1 AND page_no = 1`, d.doc).Scan(&fields); err != nil ||
		!strings.Contains(fields, twin.MRN) {
		t.Errorf("the decision's corrected fields: %s, %v", fields, err)
	}
	if n := d.audits(t, "rita", "review.rescore", "ok"); n != 1 {
		t.Errorf("%d re-scorings audited, want 1", n)
	}
}

// Hazard 4: the outcome names the patient; U undoes the decision, and the page is back with
// its status, proposed patient and candidates.
func TestBrowserReviewUndoRestoresThePageAndItsCandidates(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	before := d.page(t, d.doc, 1)
	a := d.patients[0]
	press(t, ctx, "1")
	msg := waitNextItem(t, ctx, d.key(1))
	for _, want := range []string{"Page 1 of desk.pdf", a.Family + ", " + a.Given, "MRN " + a.MRN, "Undo"} {
		if !strings.Contains(msg, want) {
			t.Errorf("outcome %q does not say %q", msg, want)
		}
	}
	if p := d.page(t, d.doc, 1); p.Status != chartscan.StatusConfirmed || p.MRN != a.MRN {
		t.Fatalf("after pressing 1: %s %s", p.Status, p.MRN)
	}
	press(t, ctx, "u")
	showing(t, ctx, d.key(1))
	waitJS(t, ctx, "the undo is confirmed", `/undone/.test((document.querySelector(".flash") || {}).textContent || "")`)
	after := d.page(t, d.doc, 1)
	if after.Status != before.Status || after.MRN != before.MRN || after.Reason != before.Reason || after.Score != before.Score {
		t.Errorf("after the undo: %s %s %q %v; before: %s %s %q %v", after.Status, after.MRN, after.Reason, after.Score,
			before.Status, before.MRN, before.Reason, before.Score)
	}
	if got, want := candidateMRNs(after), candidateMRNs(before); !slices.Equal(got, want) {
		t.Errorf("candidates after the undo %v, before %v", got, want)
	}
	if after.Version != before.Version+2 {
		t.Errorf("version %d after a decision and its undo, want %d", after.Version, before.Version+2)
	}
	if n := d.audits(t, "rita", "review.undo", "ok"); n != 1 {
		t.Errorf("%d undos audited, want 1", n)
	}
	shown := get(t, ctx, "read the candidates shown", chromedp.Evaluate[[]string](
		`[...document.getElementById("review-item").querySelectorAll("button.candidate")].map(b => b.value.replace("confirm:", ""))`))
	var want []string
	for _, c := range before.Candidates {
		want = append(want, c.MRN)
	}
	if !slices.Equal(shown, want[:min(5, len(want))]) {
		t.Errorf("candidates shown after the undo %v, want %v", shown, want)
	}
	// The page is decided again, with the twin this time; its undo is gone with the minute.
	press(t, ctx, "2")
	if msg := waitNextItem(t, ctx, d.key(1)); !strings.Contains(msg, "MRN "+d.twins[0].MRN) {
		t.Errorf("second decision's outcome %q", msg)
	}
}

// Hazard 2: no focus on a filing action after a search; results take number keys, and
// assigning asks for Y with the patient's name, MRN and birth date shown.
func TestBrowserReviewAssignFromSearchAsksToConfirm(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	b := d.patients[1]
	press(t, ctx, "/")
	press(t, ctx, b.Family)
	press(t, ctx, kb.Enter)
	waitJS(t, ctx, "search results", `document.querySelector(".found button")`)
	if tag := js[string](t, ctx, "focus", `document.activeElement.tagName`); tag == "BUTTON" || tag == "INPUT" {
		t.Errorf("after the search the focus is on a %s", tag)
	}
	if n := js[int](t, ctx, "autofocus", `document.querySelectorAll("[autofocus]").length`); n != 0 {
		t.Errorf("%d elements with autofocus", n)
	}
	press(t, ctx, kb.Enter)
	do(t, ctx, "wait", chromedp.Sleep(700*time.Millisecond))
	if p := d.page(t, d.doc, 1); p.Status != chartscan.StatusReview {
		t.Fatalf("Enter after a search filed the page: %s %s", p.Status, p.MRN)
	}
	showing(t, ctx, d.key(1))
	pick := get(t, ctx, "read the first result", chromedp.AttributeValue(chromedp.CSS(`.found button[data-key="1"]`), "value"))
	mrn, ok := strings.CutPrefix(pick.Value, "pick:")
	p, known := d.byMRN[mrn]
	if !ok || !known || p.Family != b.Family {
		t.Fatalf("the first search result is %q, want a %s", pick.Value, b.Family)
	}
	press(t, ctx, "1")
	waitJS(t, ctx, "the confirmation", `document.getElementById("assign-confirm")`)
	text := get(t, ctx, "read the confirmation", chromedp.Text(chromedp.CSS("#assign-confirm")))
	for _, want := range []string{p.Family + ", " + p.Given, p.MRN, p.BirthDate} {
		if !strings.Contains(text, want) {
			t.Errorf("the confirmation %q does not show %q", text, want)
		}
	}
	if st := d.page(t, d.doc, 1).Status; st != chartscan.StatusReview {
		t.Fatalf("choosing a search result filed the page: %s", st)
	}
	// Esc goes back to the results; 1 and Y assign.
	press(t, ctx, kb.Escape)
	waitJS(t, ctx, "back to the results", `!document.getElementById("assign-confirm") && document.querySelector(".found button")`)
	press(t, ctx, "1")
	waitJS(t, ctx, "the confirmation again", `document.getElementById("assign-confirm")`)
	press(t, ctx, "y")
	if msg := waitNextItem(t, ctx, d.key(1)); !strings.Contains(msg, "MRN "+p.MRN) || !strings.Contains(msg, p.Family) {
		t.Errorf("outcome %q, want it to name %s", msg, p.MRN)
	}
	if pg := d.page(t, d.doc, 1); pg.Status != chartscan.StatusConfirmed || pg.MRN != p.MRN {
		t.Errorf("after Y: %s %s, want confirmed to %s", pg.Status, pg.MRN, p.MRN)
	}
}

// Hazard 3: another reviewer decides first; the item then shows what they decided, every
// action is off, and only K (next) works.
func TestBrowserReviewDecidedByAnotherOffersOnlyNext(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	d.s.addUser("rob", "reviewer")
	rob := apiClient(t, d.srv, d.s.token("rob"))
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	a := d.patients[0]
	v := d.page(t, d.doc, 1).Version
	if st, body := rob.do("POST", "/api/v1/review/"+d.key(1), fmt.Sprintf(`{"version":%d,"action":"confirm","mrn":%q}`, v, a.MRN)); st != 200 {
		t.Fatalf("rob decides: %d %s", st, body)
	}
	press(t, ctx, "n")
	waitJS(t, ctx, "the item shows it decided", `document.getElementById("decided")`)
	text := get(t, ctx, "read what was decided", chromedp.Text(chromedp.CSS("#decided")))
	for _, want := range []string{"rob", a.Family + ", " + a.Given, "MRN " + a.MRN, "Next"} {
		if !strings.Contains(text, want) {
			t.Errorf("the decided item says %q, want %q in it", text, want)
		}
	}
	open := get(t, ctx, "list the actions still open", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#decision button, #empi-q")].filter(b => !b.disabled).map(b => b.textContent.trim())`))
	if len(open) != 0 {
		t.Errorf("actions still open on the decided item: %q", open)
	}
	for _, k := range []string{"1", "n", "c", "s"} {
		press(t, ctx, k)
	}
	waitJS(t, ctx, "a key says why it does nothing", `(document.getElementById("key-message") || {}).textContent`)
	do(t, ctx, "wait", chromedp.Sleep(500*time.Millisecond))
	if p := d.page(t, d.doc, 1); p.Status != chartscan.StatusConfirmed || p.MRN != a.MRN {
		t.Errorf("after keys on the decided item the page is %s %s", p.Status, p.MRN)
	}
	if n := d.audits(t, "rita", "review.decide", "ok"); n != 0 {
		t.Errorf("rita's keys decided %d times", n)
	}
	press(t, ctx, "k")
	showing(t, ctx, d.key(2))
}

// Broken 9: C on a page whose previous page is not filed says why, visibly, in a status
// region a screen reader announces.
func TestBrowserReviewDisabledContinuationSaysWhy(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	for n, why := range map[int]string{1: "first page", 2: "not filed"} {
		do(t, ctx, "open page", chromedp.Navigate(fmt.Sprintf("%s/review/%s", d.srv.url, d.key(n))))
		showing(t, ctx, d.key(n))
		press(t, ctx, "c")
		waitJS(t, ctx, "C says why", fmt.Sprintf(`(document.getElementById("key-message") || {}).textContent.includes(%q)`, why))
		msg := get(t, ctx, "read the message", chromedp.Evaluate[map[string]any](`(() => { const m = document.getElementById("key-message");
			return {role: m.getAttribute("role"), live: m.getAttribute("aria-live"), visible: m.offsetParent !== null && m.offsetHeight > 0}; })()`))
		if msg["role"] != "status" || msg["live"] != "polite" || msg["visible"] != true {
			t.Errorf("page %d: the message is %v, want a visible polite status", n, msg)
		}
		if p := d.page(t, d.doc, n); p.Status != chartscan.StatusReview {
			t.Errorf("page %d after C: %s", n, p.Status)
		}
	}
}

// Broken 10: skips are kept on the server for the session: the navigation's Review link
// does not bring a skipped item back; "start over" and a new session do.
func TestBrowserReviewSkipsStayOnTheServer(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	pw := d.s.addUser("rita", "reviewer")
	signIn(t, ctx, d.srv.url, "rita", pw)
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	press(t, ctx, "k")
	showing(t, ctx, d.key(2))
	do(t, ctx, "follow the navigation's Review link", chromedp.Click(chromedp.CSS(`header nav a[href="/review"]`)))
	do(t, ctx, "wait", chromedp.Sleep(300*time.Millisecond))
	showing(t, ctx, d.key(2))
	if loc := get(t, ctx, "location", chromedp.Location()); strings.Contains(loc, "skip") {
		t.Errorf("skips in the URL: %s", loc)
	}
	press(t, ctx, "k")
	showing(t, ctx, d.key(3))
	press(t, ctx, "k")
	waitJS(t, ctx, "the queue is empty but for the skipped", `(document.getElementById("queue-empty") || {}).textContent.includes("the 3 you skipped")`)
	do(t, ctx, "open the queue again", chromedp.Navigate(d.srv.url+"/review"))
	waitJS(t, ctx, "still empty", `document.getElementById("queue-empty")`)
	do(t, ctx, "start over", chromedp.Click(chromedp.CSS("#start-over")))
	showing(t, ctx, d.key(1))
	press(t, ctx, "k")
	showing(t, ctx, d.key(2))
	// A new session starts with no skips.
	signIn(t, ctx, d.srv.url, "rita", pw)
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
}

// Broken 8: Y, W and K work on the quality-check page.
func TestBrowserQAKeysWork(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the quality checks", chromedp.Navigate(d.srv.url+"/qa"))
	item := func() string {
		waitJS(t, ctx, "a check or none", `document.getElementById("qa-item") || document.getElementById("qa-empty")`)
		return js[string](t, ctx, "the item", `(document.getElementById("qa-item") || {dataset: {}}).dataset.item || ""`)
	}
	first := item()
	press(t, ctx, "y")
	waitJS(t, ctx, "checked correct", `/checked, correct/.test((document.querySelector(".flash") || {}).textContent || "")`)
	second := item()
	press(t, ctx, "w")
	waitJS(t, ctx, "checked wrong", `/sent back to review/.test((document.querySelector(".flash") || {}).textContent || "")`)
	third := item()
	press(t, ctx, "k")
	waitJS(t, ctx, "skipped", `(document.getElementById("qa-empty") || {}).textContent.includes("the 1 you skipped")`)
	do(t, ctx, "follow the navigation's link", chromedp.Click(chromedp.CSS(`header nav a[href="/qa"]`)))
	do(t, ctx, "wait", chromedp.Sleep(300*time.Millisecond))
	waitJS(t, ctx, "the skipped check stays skipped", `document.getElementById("qa-empty")`)
	if keys := []string{first, second, third}; slices.Contains(keys, "") || first == second || second == third {
		t.Fatalf("checks shown: %v", keys)
	}
	outcome := func(key string) string {
		doc, n, _ := strings.Cut(key, "/")
		var o string
		if err := d.conn.QueryRow(context.Background(), `SELECT coalesce(outcome, '') FROM qa_checks WHERE document_id = $1 AND page_no = $2`, doc, n).Scan(&o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o1, o2, o3 := outcome(first), outcome(second), outcome(third); o1 != "correct" || o2 != "wrong" || o3 != "" {
		t.Errorf("checks recorded: %q, %q, %q; want correct, wrong and none", o1, o2, o3)
	}
	doc, n, _ := strings.Cut(second, "/")
	if p := d.page(t, doc, mustAtoi(t, n)); p.Status != chartscan.StatusReview {
		t.Errorf("the page found wrong is %s, want back in review", p.Status)
	}
}
