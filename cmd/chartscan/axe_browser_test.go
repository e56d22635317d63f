package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, pinned by testdata/axe/package-lock.json and installed by
// deploy/install.sh (npm ci).
const axeScript = "../../testdata/axe/node_modules/axe-core/axe.min.js"

// axeViolation is one rule axe-core found broken, with where.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAxe runs axe-core's WCAG 2.1 A and AA rules on the page the browser shows and fails
// the test on every serious or critical violation.
func checkAxe(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	src, err := os.ReadFile(axeScript)
	if err != nil {
		t.Fatalf("axe-core is not installed (deploy/install.sh runs npm ci in testdata/axe): %v", err)
	}
	// The page's Content-Security-Policy admits only its own scripts; the check's is the
	// test's, not the page's.
	if _, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	get(t, ctx, "load axe-core on "+what, chromedp.Evaluate[bool](string(src)+"\n;typeof axe === 'object'"))
	found := get(t, ctx, "run axe-core on "+what, chromedp.Evaluate[[]axeViolation](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]
	}).then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))`,
		chromedp.EvalAwaitPromise))
	for _, v := range found {
		t.Errorf("%s: axe-core %s violation %s (%s) at %s", what, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, "; "))
	}
}

// Accessibility (issue 13, item 11): the review item is announced by its heading, each
// candidate's evidence describes its button, the fields are named in words, and axe-core
// finds no serious or critical violation on the review, quality-check, upload, batch and
// chart pages.
func TestBrowserReviewAccessibility(t *testing.T) {
	d := newDesk(t)
	ctx := d.ctx
	d.signInReviewer(t, "rita")
	do(t, ctx, "open the queue", chromedp.Navigate(d.srv.url+"/review"))
	showing(t, ctx, d.key(1))
	waitJS(t, ctx, "focus on the item's heading", `document.activeElement && document.activeElement.id === "item-heading"`)
	described := js[[]string](t, ctx, "evidence tied to the candidates", `[...document.getElementById("review-item").querySelectorAll("button.candidate")].map(b =>
		(document.getElementById(b.getAttribute("aria-describedby") || "") || {}).tagName || "")`)
	if len(described) < 2 || strings.Join(described, "") != strings.Repeat("TABLE", len(described)) {
		t.Errorf("candidates described by %v, want each by its evidence table", described)
	}
	names := js[map[string]string](t, ctx, "field names", `Object.fromEntries([...document.getElementById("review-item").querySelectorAll("input[data-field]")].map(i =>
		[i.dataset.field, i.getAttribute("aria-label") || ""]))`)
	for field, want := range map[string]string{"mrn": "medical record number", "dob": "date of birth", "name": "patient name"} {
		if names[field] != want {
			t.Errorf("the %s field is named %q, want %q", field, names[field], want)
		}
	}
	checkAxe(t, ctx, "a review item")
	press(t, ctx, "1")
	msg := waitNextItem(t, ctx, d.key(1))
	if role := js[string](t, ctx, "the outcome's role", `(document.getElementById("outcome") || {getAttribute: () => ""}).getAttribute("role")`); role != "status" {
		t.Errorf("the outcome %q has role %q, want status", msg, role)
	}
	checkAxe(t, ctx, "a review item after a decision")
	// A reviewer who decided first: the item shown decided.
	d.s.addUser("rob", "reviewer")
	rob := apiClient(t, d.srv, d.s.token("rob"))
	if st, body := rob.do("POST", "/api/v1/review/"+d.key(2), fmt.Sprintf(`{"version":%d,"action":"not_in_empi"}`, d.page(t, d.doc, 2).Version)); st != 200 {
		t.Fatalf("rob decides: %d %s", st, body)
	}
	press(t, ctx, "n")
	waitJS(t, ctx, "the item shows it decided", `document.getElementById("decided")`)
	checkAxe(t, ctx, "a decided review item")
	do(t, ctx, "open the quality checks", chromedp.Navigate(d.srv.url+"/qa"))
	waitJS(t, ctx, "a check", `document.getElementById("qa-item")`)
	checkAxe(t, ctx, "the quality-check page")
	do(t, ctx, "open a patient chart", chromedp.Navigate(d.srv.url+"/patients/"+d.patients[0].MRN))
	waitJS(t, ctx, "the chart", `document.querySelector("figure.thumb")`)
	checkAxe(t, ctx, "a patient chart")

	signIn(t, ctx, d.srv.url, "ada", d.s.addUser("ada", "admin"))
	do(t, ctx, "open the upload page", chromedp.Navigate(d.srv.url+"/upload"))
	waitJS(t, ctx, "the upload page", `document.getElementById("dropzone")`)
	checkAxe(t, ctx, "the upload page")
	batch := ""
	if err := d.conn.QueryRow(context.Background(), `SELECT batch_id::text FROM batch_documents WHERE document_id = $1`, d.doc).Scan(&batch); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "open the batch", chromedp.Navigate(d.srv.url+"/batches/"+batch))
	waitJS(t, ctx, "the batch page", `document.querySelector("main h1")`)
	checkAxe(t, ctx, "a batch page")
}
