package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
)

// refused is what a call to a store that is down returns: its port refuses.
func refused() error {
	return fmt.Errorf("get pages/x/1.png: %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
}

type sqlStateError string

func (e sqlStateError) Error() string    { return "ERROR: (SQLSTATE " + string(e) + ")" }
func (e sqlStateError) SQLState() string { return string(e) }

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused(), true},
		{"connection reset", fmt.Errorf("save ocr: %w", syscall.ECONNRESET), true},
		{"stream cut short", fmt.Errorf("words of page 1: %w", io.ErrUnexpectedEOF), true},
		{"another error", errors.New("tesseract: recognition failed"), false},
		{"Redis loading", fmt.Errorf("count page done: %w", redisError("LOADING Redis is loading the dataset in memory")), true},
		{"Redis pool timeout", redis.ErrPoolTimeout, true},
		{"PostgreSQL shutting down", fmt.Errorf("save ocr: %w", sqlStateError("57P01")), true},
		{"PostgreSQL starting up", sqlStateError("57P03"), true},
		{"deadlock", sqlStateError("40P01"), true},
		{"unique violation", sqlStateError("23505"), false},
		{"bad input", chartscan.Errorf(chartscan.EInvalid, "the PDF is password-protected"), false},
		{"a task's own deadline", context.DeadlineExceeded, false},
		{"nil", nil, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

// serve runs the worker's handlers as `chartscan worker` does, but with a backoff of
// milliseconds, until the test ends.
func (h *harness) serve(t *testing.T) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(h.rdb, asynq.Config{
		Concurrency: 2, Queues: Queues, LogLevel: asynq.FatalLevel, IsFailure: h.w.IsFailure,
		RetryDelayFunc:           func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond },
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 20 * time.Millisecond,
	})
	mux := asynq.NewServeMux()
	h.w.Register(mux)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

func (h *harness) page(t *testing.T, doc string, n int) chartscan.Page {
	t.Helper()
	p, err := h.db.Page(context.Background(), doc, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var readable = ocr.Result{Text: "NOTE", Confidence: 90, Quality: 90,
	Words: []chartscan.Word{{Text: "NOTE", Conf: 90, Box: chartscan.Box{X1: 10, Y1: 10}, Block: 1, Line: 1001}}}

// TestStoreFaultPastTheRetryBudgetLeavesThePageWaiting: a page whose attempts meet a
// store that is down, far more of them than its retry budget, is not failed: it stays
// pending, the task keeps trying, and once the store answers the page is read and filed.
// Before, the budget's last attempt failed the page for good ("the page could not be
// read").
func TestStoreFaultPastTheRetryBudgetLeavesThePageWaiting(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var attempts atomic.Int32
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) {
		attempts.Add(1)
		if down.Load() {
			return ocr.Result{}, refused()
		}
		return readable, nil
	}))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	h.serve(t)
	task, _ := NewOCRTask(doc, 1)
	if _, err := h.w.queue.EnqueueContext(ctx, task, asynq.MaxRetry(2)); err != nil { // a budget of three attempts
		t.Fatal(err)
	}
	waitFor(t, "ten attempts against the store that is down", func() bool { return attempts.Load() >= 10 })
	if p := h.page(t, doc, 1); p.Status != chartscan.StatusPending {
		t.Fatalf("after %d attempts against a store that is down the page is %s (%q), want pending", attempts.Load(), p.Status, p.Reason)
	}
	down.Store(false)
	waitFor(t, "the page to be read and filed", func() bool { return h.page(t, doc, 1).Status.Final() })
	if p := h.page(t, doc, 1); p.Status == chartscan.StatusFailed || p.ReadAt.IsZero() {
		t.Errorf("page after the store came back: %s (%q), read at %v", p.Status, p.Reason, p.ReadAt)
	}
}

// TestStoreFaultOnTheLastAttemptIsResumedByReconcile: a task whose budget is spent (by
// workers that died under it) and that then meets a store that is down is dropped, not
// archived: its page stays pending, and reconcile queues it again, to be read once the
// store answers. Before, the page failed.
func TestStoreFaultOnTheLastAttemptIsResumedByReconcile(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) {
		if down.Load() {
			return ocr.Result{}, refused()
		}
		return readable, nil
	}))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	h.serve(t)
	task, _ := NewOCRTask(doc, 1)
	if _, err := h.w.queue.EnqueueContext(ctx, task, asynq.MaxRetry(0)); err != nil { // its last attempt
		t.Fatal(err)
	}
	waitFor(t, "the task to be dropped", func() bool {
		_, err := h.insp.GetTaskInfo(QueueOCR, ocrID(doc, 1))
		return errors.Is(err, asynq.ErrTaskNotFound)
	})
	if p := h.page(t, doc, 1); p.Status != chartscan.StatusPending {
		t.Fatalf("after its last attempt met a store that is down the page is %s (%q), want pending", p.Status, p.Reason)
	}
	down.Store(false)
	if _, err := h.w.Reconcile(ctx, 0); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	waitFor(t, "the page to be read and filed", func() bool { return h.page(t, doc, 1).Status.Final() })
	if p := h.page(t, doc, 1); p.Status == chartscan.StatusFailed || p.ReadAt.IsZero() {
		t.Errorf("page after the store came back: %s (%q), read at %v", p.Status, p.Reason, p.ReadAt)
	}
}

// TestUnreadablePageStillFailsOnItsLastAttempt: an error that is no store fault still
// fails its page when the attempts run out, and bad input fails it at once.
func TestUnreadablePageStillFailsOnItsLastAttempt(t *testing.T) {
	for _, c := range []struct {
		name     string
		err      error
		attempts int32
	}{
		{"an error of the reader", errors.New("tesseract: recognition failed"), 3},
		{"bad input", chartscan.Errorf(chartscan.EInvalid, "the image is damaged"), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var attempts atomic.Int32
			h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) {
				attempts.Add(1)
				return ocr.Result{}, c.err
			}))
			doc := h.onePageDocument(t)
			h.serve(t)
			task, _ := NewOCRTask(doc, 1)
			if _, err := h.w.queue.EnqueueContext(context.Background(), task, asynq.MaxRetry(2)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the page to fail", func() bool { return h.page(t, doc, 1).Status == chartscan.StatusFailed })
			time.Sleep(200 * time.Millisecond) // no further attempt
			if n := attempts.Load(); n != c.attempts {
				t.Errorf("%d attempts, want %d", n, c.attempts)
			}
		})
	}
}

// threePageDocument stores a document of three split pages whose images read "page 1"…
// "page 3", starts the worker's handlers and queues the pages' OCR tasks.
func (h *harness) threePageDocument(t *testing.T) (chartscan.Batch, chartscan.Document) {
	t.Helper()
	ctx := context.Background()
	b, err := h.db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := h.db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(), FileName: "x.pdf", Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		key := storage.PageImageKey(doc.ID, n, "png")
		img := fmt.Sprintf("page %d", n)
		if err := h.w.objects.Put(ctx, key, strings.NewReader(img), int64(len(img)), "image/png"); err != nil {
			t.Fatal(err)
		}
		if err := h.db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: n, ImageKey: key, ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.db.SetPageCount(ctx, doc.ID, 3); err != nil {
		t.Fatal(err)
	}
	h.serve(t)
	for n := 1; n <= 3; n++ {
		task, _ := NewOCRTask(doc.ID, n)
		if _, err := h.w.queue.EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	return b, doc
}

// TestRerunReadsFailedPagesAgain: Re-run of a finished document with a failed page reads
// that page again and files the document again; the other pages are not read again.
// Before, only a failed document could be re-run.
func TestRerunReadsFailedPagesAgain(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	h := newHarness(t, readerFunc(func(_ context.Context, img []byte, _ int) (ocr.Result, error) {
		if broken.Load() && strings.HasPrefix(string(img), "page 2") {
			return ocr.Result{}, chartscan.Errorf(chartscan.EInvalid, "the page image is damaged")
		}
		return readable, nil
	}))
	ctx := context.Background()
	b, doc := h.threePageDocument(t)
	done := func() bool {
		d, err := h.db.Document(ctx, doc.ID)
		return err == nil && d.Status == chartscan.DocDone
	}
	waitFor(t, "the document to be filed", done)
	if p := h.page(t, doc.ID, 2); p.Status != chartscan.StatusFailed {
		t.Fatalf("page 2 is %s, want failed", p.Status)
	}
	first := h.page(t, doc.ID, 1)
	if docs, err := h.db.BatchDocuments(ctx, b.ID); err != nil || len(docs) != 1 || docs[0].Failed != 1 {
		t.Errorf("the batch lists %+v (%v), want its document with 1 failed page (the Re-run button)", docs, err)
	}

	broken.Store(false)
	if err := h.db.ResetDocument(ctx, doc.ID); err != nil {
		t.Fatalf("re-run of a document with a failed page: %v", err)
	}
	if err := RerunPages(ctx, h.w.queue, h.insp, h.rdb, doc.ID, 3); err != nil {
		t.Fatalf("RerunPages: %v", err)
	}
	waitFor(t, "the re-run to be filed", func() bool { return done() && h.page(t, doc.ID, 2).Status != chartscan.StatusPending })
	if p := h.page(t, doc.ID, 2); p.Status == chartscan.StatusFailed || p.ReadAt.IsZero() {
		t.Errorf("page 2 after the re-run: %s (%q), read at %v", p.Status, p.Reason, p.ReadAt)
	}
	if p := h.page(t, doc.ID, 1); !p.ReadAt.Equal(first.ReadAt) {
		t.Errorf("page 1 was read again by a re-run of page 2 (read at %v, then %v)", first.ReadAt, p.ReadAt)
	}
	if err := h.db.ResetDocument(ctx, doc.ID); chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Errorf("re-run of a document without failed pages: %v, want a conflict", err)
	}
}

// TestPoisonPageFailsAloneAfterTwoCrashes: a page whose read kills the reader every time
// is tried twice and then failed ("crashed the reader"), while a page that crashed the
// reader once — bad luck, not the page — is read on its next attempt. The rest of the
// document files. Before, a crash was an ordinary error: a poison page went through its
// whole retry budget, one dead reader (before isolation: one dead worker) per attempt.
func TestPoisonPageFailsAloneAfterTwoCrashes(t *testing.T) {
	var poisonReads, unluckyReads atomic.Int32
	h := newHarness(t, readerFunc(func(_ context.Context, img []byte, _ int) (ocr.Result, error) {
		switch string(img) {
		case "page 2":
			poisonReads.Add(1)
			return ocr.Result{}, &ocr.CrashError{Exit: "signal: segmentation fault"}
		case "page 3":
			if unluckyReads.Add(1) == 1 {
				return ocr.Result{}, &ocr.CrashError{Stalled: true}
			}
		}
		return readable, nil
	}))
	ctx := context.Background()
	_, doc := h.threePageDocument(t)
	waitFor(t, "the document to be filed", func() bool {
		d, err := h.db.Document(ctx, doc.ID)
		return err == nil && d.Status == chartscan.DocDone
	})
	p := h.page(t, doc.ID, 2)
	if p.Status != chartscan.StatusFailed || !strings.Contains(p.Reason, "crashed the reader") {
		t.Errorf("the poison page is %s (%q), want failed as crashing the reader", p.Status, p.Reason)
	}
	if n := poisonReads.Load(); n != 2 {
		t.Errorf("the poison page was read %d times, want 2", n)
	}
	for _, n := range []int{1, 3} {
		if p := h.page(t, doc.ID, n); p.Status == chartscan.StatusFailed || p.ReadAt.IsZero() {
			t.Errorf("page %d is %s (%q), want it read and filed", n, p.Status, p.Reason)
		}
	}
	if n := unluckyReads.Load(); n != 2 {
		t.Errorf("the page that crashed once was read %d times, want 2", n)
	}
}
