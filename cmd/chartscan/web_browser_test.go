package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser test runs Debian's chromium headless, driven by chromedp: what a clerk and
// a reviewer do in a day, keyboard-first, with screenshots for the README.

// docsDir is where the screenshots go, committed for the README.
const docsDir = "../../docs"

// browser starts a fresh headless chromium (its own profile directory) for the test.
// A missing chromium fails the test: `make test` installs it (deploy/install.sh).
func browser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: needs chromium and the local stack")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (apt-get install -y chromium; make test does it): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first call starts the browser; it must not carry a timeout (see chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// stepTimeout bounds one step; waiting for OCR of the batch has its own, longer one.
const stepTimeout = 90 * time.Second

// do runs steps, failing the test with where the browser was and what it showed.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	t.Logf("browser: %s", what)
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		browserFail(t, ctx, what, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	t.Logf("browser: %s", what)
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		browserFail(t, ctx, what, err)
	}
	return v
}

func browserFail(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(bctx, chromedp.Location())
	body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	t.Fatalf("%s: %v\nat %s:\n%.2000s", what, err, loc, body)
}

// signIn uses the sign-in form with the keyboard only.
func signIn(t *testing.T, ctx context.Context, base, name, password string) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "sign in as "+name,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("header nav")),
	)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	if err := os.MkdirAll(docsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docsDir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// imagesLoaded waits until every image on the page (and the page image inside the
// review view's SVG) has arrived, for screenshots.
func imagesLoaded(t *testing.T, ctx context.Context) {
	t.Helper()
	get(t, ctx, "images load", chromedp.Poll[bool](`[...document.images].every(i => i.complete && i.naturalWidth > 0)`,
		chromedp.WithPollingTimeout(60*time.Second)))
	// An SVG <image> has no complete flag; a short pause lets it paint.
	do(t, ctx, "paint", chromedp.Sleep(700*time.Millisecond))
}

func TestBrowserClerkUploadsReviewerDecidesWithKeyboard(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", reviewEMPI(t))
	s.startWorker()
	srv := s.startServe()
	clerkPW, reviewerPW := s.addUser("clara", "clerk"), s.addUser("rita", "reviewer")
	s.addUser("ada", "admin")
	ctx := browser(t)

	// The clerk uploads the three sample charts (chart-003.pdf among them) and watches
	// the batch's counts, fed live by the worker's events, until every page is final.
	signIn(t, ctx, srv.url, "clara", clerkPW)
	var files []string
	for _, f := range []string{"chart-003.pdf", "chart-001.pdf", "chart-002.pdf"} {
		abs, err := filepath.Abs(filepath.Join("../../testdata/charts", f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	start := time.Now()
	do(t, ctx, "open the upload page", chromedp.Navigate(srv.url+"/upload"), chromedp.WaitVisible(chromedp.CSS("#dropzone")))
	do(t, ctx, "label the batch", chromedp.SendKeys(chromedp.CSS("#label"), "browser test"))
	do(t, ctx, "choose three files", chromedp.SetUploadFiles(chromedp.CSS("#files"), files))
	do(t, ctx, "the batch appears at once", chromedp.WaitVisible(chromedp.CSS("article.batch-live .batch-link")))
	do(t, ctx, "each file has its progress bar", chromedp.WaitVisible(chromedp.CSS(`article.batch-live li[data-file="chart-003.pdf"] progress`)))
	wctx, cancel := context.WithTimeout(ctx, 9*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`!!document.querySelector('article.batch-live[data-final="true"]')`,
		chromedp.WithPollingInterval(500*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		browserFail(t, ctx, "counts reach final", err)
	}
	counts := get(t, ctx, "read the counts", chromedp.Text(chromedp.CSS("article.batch-live .counts")))
	t.Logf("batch final after %v: %s", time.Since(start).Round(time.Second), counts)
	if !strings.Contains(counts, "3/3 files final") || !strings.Contains(counts, "9/9 pages final") || !strings.Contains(counts, "review") {
		t.Errorf("final counts %q, want 3/3 files, 9/9 pages and some in review", counts)
	}
	screenshot(t, ctx, "upload.png")

	// The reviewer decides three items with the keyboard only: 1 confirms the first
	// candidate, and the next item loads at once.
	signIn(t, ctx, srv.url, "rita", reviewerPW)
	do(t, ctx, "open the queue",
		chromedp.Navigate(srv.url+"/review"),
		chromedp.WaitVisible(chromedp.CSS("#review-item")),
	)
	imagesLoaded(t, ctx)
	screenshot(t, ctx, "review.png")
	type decided struct{ key, mrn string }
	var done []decided
	for i := range 3 {
		key := get(t, ctx, "read the item", chromedp.AttributeValue(chromedp.CSS("#review-item"), "data-item")).Value
		first := get(t, ctx, "read the first candidate", chromedp.AttributeValue(chromedp.CSS(`button[data-key="1"]`), "value"))
		mrn, found := strings.CutPrefix(first.Value, "confirm:")
		if !first.Exists || !found {
			t.Fatalf("item %d (%s) has no first candidate to confirm", i+1, key)
		}
		do(t, ctx, "press 1", chromedp.KeyEvent("1"))
		if flash := waitNextItem(t, ctx, key); !strings.Contains(flash, "filed to") || !strings.Contains(flash, "MRN "+mrn) {
			t.Errorf("after deciding %s the page says %q, want it filed to MRN %s", key, flash, mrn)
		}
		done = append(done, decided{key, mrn})
	}

	// The chart of the first decided page's patient shows that page.
	first := done[0]
	thumb := fmt.Sprintf(`figure.thumb[data-page=%q]`, first.key)
	do(t, ctx, "patient chart",
		chromedp.Navigate(srv.url+"/patients/"+first.mrn),
		chromedp.WaitVisible(chromedp.CSS(thumb)),
	)
	imagesLoaded(t, ctx)
	text := get(t, ctx, "read the page's text", chromedp.TextContent(chromedp.CSS(thumb+" pre.ocr")))
	screenshot(t, ctx, "chart.png")

	// A word from that page finds it in full-text search.
	word := searchWord(text)
	if word == "" {
		t.Fatalf("no word to search for in the page's text:\n%s", text)
	}
	do(t, ctx, "search for "+word,
		chromedp.Navigate(srv.url+"/search"),
		chromedp.WaitVisible(chromedp.CSS("#search-q")),
		chromedp.SendKeys(chromedp.CSS("#search-q"), word+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`li.hit[data-page=%q]`, first.key))),
	)

	admin := apiClient(t, srv, s.token("ada"))
	_, body := admin.do("GET", "/api/v1/audit?actor=rita&action=review.decide", nil)
	if n := strings.Count(body, `"outcome":"ok"`); n != 3 {
		t.Errorf("%d decisions by the reviewer in the audit log, want 3", n)
	}
	_, body = admin.do("GET", "/api/v1/batches", nil)
	id := regexp.MustCompile(`"id":"([0-9a-f-]{36})"`).FindStringSubmatch(body)
	if id == nil {
		t.Fatalf("no batch in %s", body)
	}
	checkNoPHIInLogs(t, s, admin, id[1])
}

// waitNextItem waits until the review page shows an item other than key (or the empty
// queue) and returns the page's message about the decision. Evaluations fail while the
// page navigates; they are retried.
func waitNextItem(t *testing.T, ctx context.Context, key string) string {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		// The desk shows a preloaded item before the server answered the decision
		// (body[data-pending]); the outcome comes with the answer.
		v, err := chromedp.Run(ectx, chromedp.Evaluate[[]string](`document.readyState === "complete" && document.querySelector("main") && !document.body.dataset.pending ?
			[document.getElementById("queue-empty") ? "empty" : (document.getElementById("review-item") || {dataset: {}}).dataset.item || "",
			 (document.querySelector(".flash") || {}).textContent || ""] : ["", ""]`))
		cancel()
		if err == nil && len(v) == 2 && v[0] != "" && v[0] != key {
			return v[1]
		}
		time.Sleep(100 * time.Millisecond)
	}
	browserFail(t, ctx, "the next item loads after "+key, context.DeadlineExceeded)
	return ""
}

// searchWord picks a distinctive word of the page: the longest all-letter word, which
// the English stemmer leaves searchable whatever its form.
func searchWord(text string) string {
	best := ""
	for _, w := range regexp.MustCompile(`[A-Za-z]{5,}`).FindAllString(text, -1) {
		if len(w) > len(best) && !strings.EqualFold(w, "synthetic") {
			best = w
		}
	}
	return strings.ToLower(best)
}
