package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
)

// readerFunc adapts a function to Reader, to make Tesseract misbehave on purpose.
type readerFunc func(ctx context.Context, img []byte, dpi int) (ocr.Result, error)

func (f readerFunc) Read(ctx context.Context, img []byte, dpi int) (ocr.Result, error) {
	return f(ctx, img, dpi)
}

type harness struct {
	w    *Worker
	db   *storage.DB
	rdb  *redis.Client
	insp *asynq.Inspector
	logs *bytes.Buffer
}

// newHarness wires a Worker to real PostgreSQL, MinIO and Redis with the given reader.
func newHarness(t *testing.T, r Reader) *harness {
	t.Helper()
	env := stacktest.New(t)
	ctx := context.Background()
	db, err := storage.Open(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	objs, err := storage.NewObjects(ctx, storage.ObjectsConfig{Endpoint: env.MinIO, AccessKey: env.AccessKey, SecretKey: env.SecretKey, Bucket: env.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	q := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	logs := &bytes.Buffer{}
	w, err := New(Config{Store: db, Objects: objs, Reader: r, Queue: q, Inspect: insp, Redis: rdb,
		Keys:   Keys{Original: storage.OriginalKey, PageImage: storage.PageImageKey},
		Limits: ocr.DefaultLimits, Model: indexer.DefaultModel(), Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{w: w, db: db, rdb: rdb, insp: insp, logs: logs}
}

// onePageDocument stores a document of one split page, as scan:split leaves it.
func (h *harness) onePageDocument(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	b, err := h.db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := h.db.AddDocument(ctx, b.ID, chartscan.Document{ID: uuid.NewString(), SHA256: uuid.NewString(), FileName: "x.png", Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	key := storage.PageImageKey(doc.ID, 1, "png")
	if err := h.w.objects.Put(ctx, key, strings.NewReader("png"), 3, "image/png"); err != nil {
		t.Fatal(err)
	}
	if err := h.db.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: 1, ImageKey: key, ImageType: "image/png", Width: 1, Height: 1, DPI: 300}); err != nil {
		t.Fatal(err)
	}
	if err := h.db.SetPageCount(ctx, doc.ID, 1); err != nil {
		t.Fatal(err)
	}
	return doc.ID
}

func TestPanickingReaderFailsThePageNotTheWorker(t *testing.T) {
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) {
		var m map[string]int
		m["boom"]++ // a nil-map panic, as a bug deep in a decoder would raise
		return ocr.Result{}, nil
	}))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	task, _ := NewOCRTask(doc, 1)
	err := h.w.HandleOCR(ctx, task)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("HandleOCR error = %v, want one wrapping asynq.SkipRetry", err)
	}
	page, err := h.db.Page(ctx, doc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != chartscan.StatusFailed || page.Reason == "" || strings.Contains(page.Reason, "nil map") {
		t.Errorf("page status %q reason %q, want failed with a reason for a clerk (no internals)", page.Status, page.Reason)
	}
	// The failed page counts towards its document: the match is enqueued.
	if _, err := h.insp.GetTaskInfo(QueueMatch, matchID(doc)); err != nil {
		t.Errorf("match task not enqueued after the last page failed: %v", err)
	}
	match, _ := NewMatchTask(doc)
	if err := h.w.HandleMatch(ctx, match); err != nil {
		t.Fatalf("HandleMatch: %v", err)
	}
	d, err := h.db.Document(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != chartscan.DocDone {
		t.Errorf("document status %q, want done", d.Status)
	}
}

func TestOCRTaskTwiceReadsOnce(t *testing.T) {
	calls := 0
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) {
		calls++
		w := chartscan.Word{Text: "NOTE", Conf: 90, Box: chartscan.Box{X1: 10, Y1: 10}, Block: 1, Line: 1001}
		return ocr.Result{Words: []chartscan.Word{w}, Text: "NOTE", Confidence: 90}, nil
	}))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	task, _ := NewOCRTask(doc, 1)
	for range 2 {
		if err := h.w.HandleOCR(ctx, task); err != nil {
			t.Fatalf("HandleOCR: %v", err)
		}
	}
	if calls != 1 {
		t.Errorf("Tesseract ran %d times for a task run twice, want 1", calls)
	}
	ext, _ := NewExtractTask(doc, 1)
	for range 2 {
		if err := h.w.HandleExtract(ctx, ext); err != nil {
			t.Fatalf("HandleExtract: %v", err)
		}
	}
	if n, _ := h.rdb.SCard(ctx, doneKey(doc)).Result(); n != 1 {
		t.Errorf("fan-in counted %d pages done for one page extracted twice, want 1", n)
	}
}

func TestNewRefusesAModelThatCannotDecide(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, indexer.ErrModel) {
		t.Errorf("New with a zero model: err = %v, want indexer.ErrModel", err)
	}
}

func TestReconcileFailsPageWhoseTaskWasArchived(t *testing.T) {
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) { return ocr.Result{}, nil }))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	// An OCR task that Asynq gave up on without the handler's last word (its worker died
	// on every attempt): enqueue it, then archive it as the recoverer would.
	task, _ := NewOCRTask(doc, 1)
	if _, err := h.w.queue.EnqueueContext(ctx, task); err != nil {
		t.Fatal(err)
	}
	if err := h.insp.ArchiveTask(QueueOCR, ocrID(doc, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.w.Reconcile(ctx, 0); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	page, err := h.db.Page(ctx, doc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if page.Status != chartscan.StatusFailed {
		t.Errorf("page status %q after reconcile of an archived task, want failed", page.Status)
	}
}

func TestRerunReplacesTheFinishedRun(t *testing.T) {
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) { return ocr.Result{}, nil }))
	ctx := context.Background()
	doc := h.onePageDocument(t)
	// The first run's tasks are still retained under their ids, and its fan-in counted.
	for _, mk := range []func() (*asynq.Task, error){
		func() (*asynq.Task, error) { return NewSplitTask(doc) },
		func() (*asynq.Task, error) { return NewOCRTask(doc, 1) },
	} {
		task, _ := mk()
		if _, err := h.w.queue.EnqueueContext(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	h.rdb.SAdd(ctx, doneKey(doc), 1)
	if err := Rerun(ctx, h.w.queue, h.insp, h.rdb, doc); err != nil {
		t.Fatalf("Rerun: %v", err)
	}
	if _, err := h.insp.GetTaskInfo(QueueOCR, ocrID(doc, 1)); err == nil {
		t.Error("the old OCR task is still there")
	}
	if _, err := h.insp.GetTaskInfo(QueueSplit, splitID(doc)); err != nil {
		t.Errorf("no new split task: %v", err)
	}
	if n, _ := h.rdb.Exists(ctx, doneKey(doc)).Result(); n != 0 {
		t.Error("the fan-in set of the old run survived")
	}
}

func TestRefileRefusesADocumentStillBeingRead(t *testing.T) {
	h := newHarness(t, readerFunc(func(context.Context, []byte, int) (ocr.Result, error) { return ocr.Result{}, nil }))
	doc := h.onePageDocument(t)
	_, err := h.w.Refile(context.Background(), doc, true)
	if chartscan.ErrorCode(err) != chartscan.EConflict {
		t.Fatalf("Refile of an unfinished document: %v, want a conflict", err)
	}
	if p, err := h.db.Page(context.Background(), doc, 1); err != nil || p.Status != chartscan.StatusPending {
		t.Errorf("page after the refused refile: %v %v, want pending", p.Status, err)
	}
}

// The draw for quality checks is a fixed function of the page, at about the rate asked.
func TestQADrawnAtTheRate(t *testing.T) {
	drawn := 0
	for n := 1; n <= 20000; n++ {
		if qaDrawn("3f2504e0-4f89-11d3-9a0c-0305e82c3301", n, 0.05) {
			drawn++
		}
		if qaDrawn("3f2504e0-4f89-11d3-9a0c-0305e82c3301", n, 0.05) != qaDrawn("3f2504e0-4f89-11d3-9a0c-0305e82c3301", n, 0.05) {
			t.Fatal("the draw of one page changed")
		}
		if qaDrawn("x", n, 0) || !qaDrawn("x", n, 1) {
			t.Fatal("rate 0 drew a page or rate 1 missed one")
		}
	}
	if drawn < 900 || drawn > 1100 { // 1000 expected, σ ≈ 31
		t.Errorf("%d of 20000 pages drawn at 5%%", drawn)
	}
}
