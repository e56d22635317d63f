package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/ocr"
)

// Store is the part of the PostgreSQL index the tasks use.
type Store interface {
	Document(ctx context.Context, id string) (chartscan.Document, error)
	FailDocument(ctx context.Context, id, reason string) error
	SavePage(ctx context.Context, p chartscan.Page) error
	SetPageCount(ctx context.Context, id string, n int) error
	Page(ctx context.Context, documentID string, n int) (chartscan.Page, error)
	SaveOCR(ctx context.Context, documentID string, n int, r chartscan.Reading) error
	PageWords(ctx context.Context, documentID string, n int) (words []byte, key string, err error)
	MarkBlank(ctx context.Context, documentID string, n int) error
	SaveIdentifiers(ctx context.Context, documentID string, n int, ids []chartscan.Identifier) error
	FailPage(ctx context.Context, documentID string, n int, reason string) error
	CountCrash(ctx context.Context, documentID string, n int) (int, error)
	PagesDone(ctx context.Context, documentID string) (int, error)
	MatchPages(ctx context.Context, documentID string) ([]chartscan.Page, error)
	Candidates(ctx context.Context, q chartscan.CandidateQuery, limit int) ([]chartscan.Patient, error)
	CandidatesWithShares(ctx context.Context, q chartscan.CandidateQuery, limit int) ([]chartscan.Patient, map[string]float64, error)
	FilingGeneration(ctx context.Context, documentID string) (int64, error)
	SaveFilingsAt(ctx context.Context, documentID string, generation int64, filings map[int]chartscan.Filing) error
	Unfinished(ctx context.Context, olderThan time.Duration) ([]chartscan.Document, error)
	PagesNotDone(ctx context.Context, documentID string) (map[int]bool, error)
}

// Objects is the part of the object store the tasks use.
type Objects interface {
	GetFile(ctx context.Context, key, path string) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
}

// Reader reads a page image: Tesseract in production.
type Reader interface {
	Read(ctx context.Context, img []byte, dpi int) (ocr.Result, error)
}

// Enqueuer puts tasks on the queue: an *asynq.Client.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Inspector looks up a task by id: an *asynq.Inspector.
type Inspector interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
}

// Keys are the object keys the tasks write; storage defines them.
type Keys struct {
	Original  func(sha string) string
	PageImage func(documentID string, page int, ext string) string
}

// Worker runs chartscan's tasks.
type Worker struct {
	store   Store
	objects Objects
	reader  Reader
	queue   Enqueuer
	inspect Inspector
	redis   redis.UniversalClient
	keys    Keys
	limits  ocr.Limits
	model   indexer.Model
	pages   PagePolicy
	fault   func(error) bool
	observe func(stage string, d time.Duration)
	log     *slog.Logger
}

// Config holds a Worker's dependencies.
type Config struct {
	Store   Store
	Objects Objects
	Reader  Reader
	Queue   Enqueuer
	Inspect Inspector
	Redis   redis.UniversalClient
	Keys    Keys
	Limits  ocr.Limits
	Model   indexer.Model // the matching model and its thresholds
	Pages   PagePolicy
	// Transient reports whether an error is a store fault that clears by itself
	// (storage.Transient); work that meets one waits and is never failed. Network
	// faults and Redis's own are recognized without it.
	Transient func(error) bool
	// Observe, when set, is told how long each stage of a page took (see Stage…): the
	// worker's chartscan_stage_seconds histogram.
	Observe func(stage string, d time.Duration)
	Log     *slog.Logger
}

// The stages the worker times besides the reader's own (ocr.Stage…): fetching the page
// image, the reader's round trip beyond its stages (the child process, the pipe), storing
// the words and the upright image, extraction, the document's match, and the wait in the
// queue of an OCR and an extract task.
const (
	StageFetch        = "fetch"
	StageReader       = "reader"
	StageStore        = "store"
	StageExtract      = "extract"
	StageMatch        = "match"
	StageQueueOCR     = "queue_ocr"
	StageQueueExtract = "queue_extract"
	StageSplit        = "split" // a whole document: fetch the file, split, store and enqueue its pages
	StageFanIn        = "fanin" // a page counted done in Redis, its document's count checked
)

// PagePolicy is what a facility configures about pages: its cover-sheet barcode
// prefix, its separator-sheet value, the read quality below which a page is a poor scan
// that goes to review, and the share of automatically filed pages drawn for a quality
// check.
type PagePolicy struct {
	CoverPrefix    string  // "CHARTSCAN:" when empty
	SeparatorValue string  // "PATCHT" when empty
	QualityFloor   float64 // 0–100
	QARate         float64 // 0–1
}

// New returns a Worker. It refuses a matching model that cannot decide safely.
func New(c Config) (*Worker, error) {
	if err := c.Model.Validate(); err != nil {
		return nil, err
	}
	return &Worker{store: c.Store, objects: c.Objects, reader: c.Reader, queue: c.Queue, inspect: c.Inspect, redis: c.Redis,
		keys: c.Keys, limits: c.Limits, model: c.Model, pages: c.Pages, fault: c.Transient, observe: c.Observe, log: c.Log}, nil
}

// time tells Observe how long a stage took.
func (w *Worker) time(stage string, d time.Duration) {
	if w.observe != nil {
		w.observe(stage, d)
	}
}

// queued times a task's wait in its queue, on its first attempt only (a retry's wait is
// its backoff).
func (w *Worker) queued(ctx context.Context, stage string, p PagePayload) {
	if n, _ := asynq.GetRetryCount(ctx); n == 0 && p.QueuedAt > 0 {
		w.time(stage, time.Since(time.Unix(0, p.QueuedAt)))
	}
}

// Register adds the handlers to mux.
func (w *Worker) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeSplit, w.waiting(w.HandleSplit))
	mux.HandleFunc(TypeOCR, w.waiting(w.HandleOCR))
	mux.HandleFunc(TypeExtract, w.waiting(w.HandleExtract))
	mux.HandleFunc(TypeMatch, w.waiting(w.HandleMatch))
	mux.HandleFunc(TypeRefile, w.waiting(w.HandleRefile))
}

// submit returns a function that puts a task, as a New…Task constructor returns it, on
// the queue: w.submit(ctx)(NewOCRTask(id, n)). A task with the same id already queued,
// running or recently finished is the same work, so it is not an error.
func (w *Worker) submit(ctx context.Context) func(*asynq.Task, error) error {
	return func(t *asynq.Task, err error) error {
		if err != nil {
			return err
		}
		if _, err := w.queue.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
			return fmt.Errorf("enqueue %s: %w", t.Type(), err)
		}
		return nil
	}
}

// final reports whether err ends a task's work for good: bad input or a panic at once,
// any other error on the last attempt — but never a fault of the network, Redis or
// PostgreSQL (Transient), which waits (see Register).
func final(ctx context.Context, err error) bool { return finalBy(ctx, err, Transient) }

// final is the package's final with every store fault the worker was told of.
func (w *Worker) final(ctx context.Context, err error) bool { return finalBy(ctx, err, w.transient) }

func finalBy(ctx context.Context, err error, transient func(error) bool) bool {
	switch {
	case errors.Is(err, asynq.SkipRetry):
		return true
	case transient(err):
		return false
	}
	return lastAttempt(ctx)
}

func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

// transient reports whether err is a fault of a store, Redis or the network.
func (w *Worker) transient(err error) bool {
	return Transient(err) || (w.fault != nil && w.fault(err))
}

// waiting drops a task that meets a store fault on its last attempt (its budget spent
// by workers that died under it, see maxRetry), rather than let Asynq archive it: its
// work is still unfinished in PostgreSQL, not failed, and reconcile queues it again with
// a fresh budget once PostgreSQL answers. An archived task would have its work failed
// by reconcile.
func (w *Worker) waiting(h asynq.HandlerFunc) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		err := h(ctx, t)
		if err != nil && lastAttempt(ctx) && !errors.Is(err, asynq.SkipRetry) && w.transient(err) {
			return fmt.Errorf("%w: the stores did not answer; reconcile queues it again: %w", asynq.RevokeTask, err)
		}
		return err
	}
}

// recovered turns a panic into a permanent failure: a handler that panicked on some
// input will panic on it again.
func recovered(r any) error {
	return fmt.Errorf("panic: %v: %w", r, asynq.SkipRetry)
}

// permanent marks err as not worth a retry when it is the input's fault.
func permanent(err error) error {
	if chartscan.ErrorCode(err) == chartscan.EInvalid && !errors.Is(err, asynq.SkipRetry) {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// reason is what a clerk reads about a failure: the message of an input error, else a
// general sentence (the detail goes to the log, not the user).
func reason(err error, general string) string {
	if chartscan.ErrorCode(err) == chartscan.EInvalid {
		return chartscan.ErrorMessage(err)
	}
	return general
}

// HandleSplit splits a stored document into page images, stores them and enqueues one
// page:ocr task per page as each page is stored, so OCR starts before a long file ends.
func (w *Worker) HandleSplit(ctx context.Context, t *asynq.Task) (err error) {
	p, err := decode[DocumentPayload](t)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r)
		}
		if err != nil && w.final(ctx, err) {
			if ferr := w.store.FailDocument(ctx, p.DocumentID, reason(err, "the file could not be processed; try uploading it again")); ferr != nil {
				err = ferr // retried: the failure must be recorded
				return
			}
			w.publish(ctx, p.DocumentID, 0, "failed")
		}
	}()
	doc, err := w.store.Document(ctx, p.DocumentID)
	if err != nil {
		return err
	}
	if doc.Status.Final() {
		return nil
	}
	if doc.Status == chartscan.DocProcessing && doc.PageCount > 0 {
		return w.resume(ctx, doc)
	}
	splitStart := time.Now()
	f, err := os.CreateTemp("", "chartscan-split-*")
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	if err := w.objects.GetFile(ctx, w.keys.Original(doc.SHA256), f.Name()); err != nil {
		return err
	}
	n, err := ocr.Split(ctx, f.Name(), w.limits, func(pi ocr.PageImage) error {
		key := w.keys.PageImage(doc.ID, pi.Number, pi.Ext)
		if err := w.objects.Put(ctx, key, bytesReader(pi.Data), int64(len(pi.Data)), pi.Type); err != nil {
			return err
		}
		if err := w.store.SavePage(ctx, chartscan.Page{DocumentID: doc.ID, Number: pi.Number, ImageKey: key,
			ImageType: pi.Type, Width: pi.Width, Height: pi.Height, DPI: pi.DPI}); err != nil {
			return err
		}
		return w.submit(ctx)(NewOCRTask(doc.ID, pi.Number))
	})
	if err != nil {
		return permanent(err)
	}
	if err := w.store.SetPageCount(ctx, doc.ID, n); err != nil {
		return err
	}
	w.time(StageSplit, time.Since(splitStart))
	w.log.InfoContext(ctx, "document split", "document_id", doc.ID, "pages", n)
	// Pages may all be read already if the split ran before; the fan-in then needs a nudge.
	return w.checkDone(ctx, doc.ID, n)
}

// resume puts back the tasks of a split document whose pages are not all done, and
// counts the done ones in the fan-in again (a re-run of failed pages cleared it).
func (w *Worker) resume(ctx context.Context, doc chartscan.Document) error {
	pending, err := w.store.PagesNotDone(ctx, doc.ID)
	if err != nil {
		return err
	}
	var done []any
	for n := 1; n <= doc.PageCount; n++ {
		if _, ok := pending[n]; !ok {
			done = append(done, n)
		}
	}
	if len(done) > 0 {
		if err := w.redis.SAdd(ctx, doneKey(doc.ID), done...).Err(); err != nil {
			return fmt.Errorf("count pages done: %w", err)
		}
	}
	for n, read := range pending {
		if read {
			err = w.submit(ctx)(NewExtractTask(doc.ID, n))
		} else {
			err = w.submit(ctx)(NewOCRTask(doc.ID, n))
		}
		if err != nil {
			return err
		}
	}
	if len(pending) == 0 {
		return w.submit(ctx)(NewMatchTask(doc.ID))
	}
	return nil
}

// pageTask runs fn for one page and turns its final failure into a failed page that
// still counts towards its document, so one bad page never holds up a batch.
func (w *Worker) pageTask(ctx context.Context, t *asynq.Task, fn func(PagePayload) error) (err error) {
	p, err := decode[PagePayload](t)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r)
		}
		if err != nil && w.final(ctx, err) {
			w.log.WarnContext(ctx, "page failed", "document_id", p.DocumentID, "page", p.Page, "task", t.Type(), "error", err)
			if ferr := w.store.FailPage(ctx, p.DocumentID, p.Page, reason(err, "the page could not be read; it is kept and can be re-run")); ferr != nil {
				err = ferr
				return
			}
			if derr := w.pageDone(ctx, p.DocumentID, p.Page); derr != nil {
				err = derr
			}
		}
	}()
	return fn(p)
}

// HandleOCR reads one page with Tesseract and stores its text and words.
func (w *Worker) HandleOCR(ctx context.Context, t *asynq.Task) error {
	return w.pageTask(ctx, t, func(p PagePayload) error {
		page, err := w.store.Page(ctx, p.DocumentID, p.Page)
		if err != nil {
			return err
		}
		if page.Status.Final() || !page.ExtractedAt.IsZero() {
			return w.pageDone(ctx, p.DocumentID, p.Page)
		}
		if !page.ReadAt.IsZero() {
			return w.submit(ctx)(NewExtractTask(p.DocumentID, p.Page))
		}
		w.queued(ctx, StageQueueOCR, p)
		mark := time.Now()
		rc, err := w.objects.Get(ctx, page.ImageKey)
		if err != nil {
			return err
		}
		img, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		start := time.Now()
		w.time(StageFetch, start.Sub(mark))
		res, err := w.reader.Read(ctx, img, page.DPI)
		if errors.Is(err, ocr.ErrCrashed) {
			return w.crashed(ctx, p, err)
		}
		if err != nil {
			return permanent(err) // a page the reader calls bad input fails at once
		}
		took := time.Since(start)
		for stage, d := range res.Stages {
			w.time(stage, d)
			took -= d
		}
		w.time(StageReader, max(took, 0))
		mark = time.Now()
		if res.Blank {
			// A duplex back: neither read further nor filed, but shown to the clerk.
			if err := w.store.MarkBlank(ctx, p.DocumentID, p.Page); err != nil {
				return err
			}
			return w.pageDone(ctx, p.DocumentID, p.Page)
		}
		r := chartscan.Reading{Text: res.Text, Confidence: res.Confidence, LowConfidence: res.LowConfidence,
			Quality: res.Quality, LittleText: res.LittleText, Rotation: res.Rotation,
			RotationConfidence: res.RotationConf, Skew: res.Skew}
		for _, b := range res.Barcodes {
			r.Barcodes = append(r.Barcodes, chartscan.Barcode{Format: b.Format, Text: b.Text, Box: b.Box})
		}
		if c, ok := ocr.CoverSheet(res.Barcodes, w.pages.CoverPrefix); ok {
			r.CoverMRN = c.MRN
		}
		r.Separator = ocr.IsSeparator(res.Barcodes, w.pages.SeparatorValue)
		if res.Image != nil {
			// OCR read an upright (turned, deskewed or rescaled) copy; the word boxes fit
			// it, so it becomes the page image a reviewer sees. The original stays.
			kind, name := res.ImageType, "upright.png"
			switch kind {
			case "image/jpeg":
				name = "upright.jpg"
			case "":
				kind = "image/png" // a reader from before ImageType
			}
			key := w.keys.PageImage(p.DocumentID, p.Page, name)
			if err := w.objects.Put(ctx, key, bytesReader(res.Image), int64(len(res.Image)), kind); err != nil {
				return err
			}
			r.ImageKey, r.ImageType, r.Width, r.Height, r.DPI = key, kind, res.Width, res.Height, res.DPI
		}
		words, err := json.Marshal(res.Words)
		if err != nil {
			return err
		}
		r.Words = words
		if err := w.store.SaveOCR(ctx, p.DocumentID, p.Page, r); err != nil {
			return err
		}
		w.time(StageStore, time.Since(mark))
		w.log.DebugContext(ctx, "page read", "document_id", p.DocumentID, "page", p.Page,
			"words", len(res.Words), "rotation", res.Rotation, "quality", int(res.Quality), "ms", time.Since(start).Milliseconds())
		return w.submit(ctx)(NewExtractTask(p.DocumentID, p.Page))
	})
}

// crashed counts a read that killed the reader's process (or overran its time limit).
// The first crash may be bad luck — memory pressure, a reader hurt by an earlier page — so
// the page is tried again, by whichever worker takes it; the second crash makes it a
// poison page, failed and kept, so that it cannot go on to kill reader after reader.
func (w *Worker) crashed(ctx context.Context, p PagePayload, err error) error {
	n, cerr := w.store.CountCrash(ctx, p.DocumentID, p.Page)
	if cerr != nil {
		return cerr
	}
	w.log.WarnContext(ctx, "page crashed the reader", "document_id", p.DocumentID, "page", p.Page, "crashes", n, "error", err)
	if n >= maxCrashes {
		return permanent(chartscan.Errorf(chartscan.EInvalid, "this page crashed the reader twice; it is kept and can be re-run"))
	}
	return err
}

// maxCrashes is how many times a page may kill the reader before it fails.
const maxCrashes = 2

// HandleExtract reads the identifiers from one page's words.
func (w *Worker) HandleExtract(ctx context.Context, t *asynq.Task) error {
	return w.pageTask(ctx, t, func(p PagePayload) error {
		page, err := w.store.Page(ctx, p.DocumentID, p.Page)
		if err != nil {
			return err
		}
		if page.Status.Final() || !page.ExtractedAt.IsZero() {
			return w.pageDone(ctx, p.DocumentID, p.Page)
		}
		if page.ReadAt.IsZero() {
			return w.submit(ctx)(NewOCRTask(p.DocumentID, p.Page))
		}
		w.queued(ctx, StageQueueExtract, p)
		start := time.Now()
		if err := w.extractPage(ctx, page); err != nil {
			return err
		}
		w.time(StageExtract, time.Since(start))
		return w.pageDone(ctx, p.DocumentID, p.Page)
	})
}

// extractPage reads a page's stored words and saves the identifiers found in them.
func (w *Worker) extractPage(ctx context.Context, page chartscan.Page) error {
	raw, key, err := w.store.PageWords(ctx, page.DocumentID, page.Number)
	if err != nil {
		return err
	}
	if raw == nil && key != "" { // read before the words were kept in the row
		rc, err := w.objects.Get(ctx, key)
		if err != nil {
			return err
		}
		raw, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	var words []chartscan.Word
	if err := json.Unmarshal(raw, &words); err != nil {
		return fmt.Errorf("words of page %d: %w", page.Number, err)
	}
	ids, err := w.identify(ctx, words)
	if err != nil {
		return err
	}
	return w.store.SaveIdentifiers(ctx, page.DocumentID, page.Number, ids)
}

// identify reads a page's identifiers: what extract finds by labels and layout, then,
// when that lacks the MRN, the name or the birth date, what the EMPI's lead finds —
// every MRN-shaped token and, failing those, every date on the page is looked up, and a
// patient whose name and birth date the page also shows fills in the missing fields
// (indexer.Supported, indexer.Complete). Two patients supported equally well fill in
// nothing: the page's own evidence decides, or a reviewer.
func (w *Worker) identify(ctx context.Context, words []chartscan.Word) ([]chartscan.Identifier, error) {
	ids := extract(words)
	e := indexer.EvidenceFrom(ids)
	if e.MRN.Value != "" && e.Family.Value != "" && e.DOB.Value != "" {
		return ids, nil
	}
	mrns, dates := indexer.Probes(words)
	var found []chartscan.Identifier
	supported := map[string]bool{}
	try := func(q chartscan.CandidateQuery, via func(chartscan.Patient) string) error {
		pats, err := w.store.Candidates(ctx, q, candidateLimit)
		if err != nil {
			return err
		}
		for _, p := range pats {
			k := indexer.NormalizeMRN(p.MRN)
			if supported[k] {
				continue
			}
			if f, ok := indexer.Supported(words, p, via(p)); ok {
				supported[k] = true
				found = f
			}
		}
		return nil
	}
	if len(mrns) > 0 {
		var keys []string
		for _, m := range mrns {
			keys = append(keys, m)
			keys = append(keys, indexer.MRNVariants(m, w.model.CheckDigit)...)
		}
		err := try(chartscan.CandidateQuery{MRNs: keys}, func(p chartscan.Patient) string {
			// The token that led to p: its own MRN if printed, else the variant or alias.
			for _, m := range mrns {
				if m == indexer.NormalizeMRN(p.MRN) {
					return m
				}
			}
			for _, m := range mrns {
				if slices.Contains(indexer.MRNVariants(m, w.model.CheckDigit), indexer.NormalizeMRN(p.MRN)) {
					return m
				}
			}
			return mrns[0]
		})
		if err != nil {
			return nil, fmt.Errorf("look up the page's numbers: %w", err)
		}
	}
	if len(supported) == 0 && e.Family.Value == "" {
		for _, d := range dates {
			if err := try(chartscan.CandidateQuery{BirthDate: d}, func(chartscan.Patient) string { return "" }); err != nil {
				return nil, fmt.Errorf("look up the page's dates: %w", err)
			}
			if len(supported) > 1 {
				break
			}
		}
	}
	if len(supported) != 1 {
		return ids, nil
	}
	return indexer.Complete(ids, found), nil
}
