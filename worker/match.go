package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// extract is the identifier extraction the tasks use.
var extract = indexer.Extract

// ProgressChannel is the Redis channel that carries progress events, one JSON
// ProgressEvent per page or document that moves, for live views.
const ProgressChannel = "chartscan:progress"

// ProgressEvent says that a page (or, with Page 0, a document) reached a stage.
type ProgressEvent struct {
	DocumentID string `json:"document_id"`
	Page       int    `json:"page,omitempty"`
	Stage      string `json:"stage"`
}

// publish sends a progress event. Progress is a convenience for live views: losing one
// is harmless, so its failure is logged, not returned.
func (w *Worker) publish(ctx context.Context, documentID string, page int, stage string) {
	b, _ := json.Marshal(ProgressEvent{DocumentID: documentID, Page: page, Stage: stage})
	if err := w.redis.Publish(ctx, ProgressChannel, b).Err(); err != nil {
		w.log.DebugContext(ctx, "progress event not sent", "document_id", documentID, "error", err)
	}
}

func doneKey(documentID string) string { return "chartscan:doc:" + documentID + ":done" }

// pageDone is the fan-in: it records in Redis that a page is through extraction and,
// when it was the document's last, enqueues document:match. A set, not a counter, so a
// task that runs twice counts once.
func (w *Worker) pageDone(ctx context.Context, documentID string, page int) error {
	defer func(start time.Time) { w.time(StageFanIn, time.Since(start)) }(time.Now())
	key := doneKey(documentID)
	pipe := w.redis.TxPipeline()
	pipe.SAdd(ctx, key, page)
	card := pipe.SCard(ctx, key)
	pipe.Expire(ctx, key, 7*24*time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("count page done: %w", err)
	}
	w.publish(ctx, documentID, page, "extracted")
	doc, err := w.store.Document(ctx, documentID)
	if err != nil {
		return err
	}
	if doc.PageCount > 0 && int(card.Val()) >= doc.PageCount {
		return w.submit(ctx)(NewMatchTask(documentID))
	}
	return nil
}

// checkDone enqueues the match of a document whose n pages are all done already.
func (w *Worker) checkDone(ctx context.Context, documentID string, n int) error {
	c, err := w.redis.SCard(ctx, doneKey(documentID)).Result()
	if err != nil {
		return fmt.Errorf("count pages done: %w", err)
	}
	if int(c) >= n {
		return w.submit(ctx)(NewMatchTask(documentID))
	}
	return nil
}

// candidateLimit bounds the EMPI patients each blocking query returns for a segment.
const candidateLimit = 20

// HandleMatch files every page of a document: indexer.FileSegments groups the pages into
// patient segments, looks up each segment's candidates in the EMPI, scores them and
// decides; every page carries its segment's decision and evidence. Pages that failed, are
// blank or are separator sheets are not content, and pages a reviewer decided keep their
// filing (see Refile).
func (w *Worker) HandleMatch(ctx context.Context, t *asynq.Task) (err error) {
	p, err := decode[DocumentPayload](t)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = recovered(r)
		}
		if err != nil && final(ctx, err) {
			// Filing failed for good: every unfiled page goes to a person.
			w.log.ErrorContext(ctx, "match failed; pages sent to review", "document_id", p.DocumentID, "error", err)
			if ferr := w.reviewAll(ctx, p.DocumentID); ferr != nil {
				err = ferr
			}
		}
	}()
	doc, err := w.store.Document(ctx, p.DocumentID)
	if err != nil {
		return err
	}
	if doc.Status == chartscan.DocFailed || doc.PageCount == 0 {
		return nil
	}
	done, err := w.store.PagesDone(ctx, doc.ID)
	if err != nil {
		return err
	}
	if done < doc.PageCount {
		// The Redis count ran ahead of PostgreSQL (or was rebuilt); try again shortly.
		return fmt.Errorf("document %s: %d of %d pages done", doc.ID, done, doc.PageCount)
	}
	start := time.Now()
	if _, err := w.file(ctx, doc.ID); err != nil {
		return err
	}
	w.time(StageMatch, time.Since(start))
	w.publish(ctx, doc.ID, 0, "filed")
	return nil
}

// file groups a document's pages into segments, decides each segment against the EMPI
// and saves every page's filing; it returns the pages per status it filed them to.
// Saving is a compare-and-set on the document's filing generation, read before the
// pages: when a reviewer decided, split or re-ran pages meanwhile, nothing is saved and
// the filing is computed again from the pages as they are now (see errStale).
func (w *Worker) file(ctx context.Context, documentID string) (map[chartscan.PageStatus]int, error) {
	for attempt := 1; ; attempt++ {
		gen, err := w.store.FilingGeneration(ctx, documentID)
		if err != nil {
			return nil, err
		}
		// Checked after the generation is read: a re-run that puts pages back to be read
		// bumps it, so a filing cannot land on pages still being read.
		if err := w.readyToFile(ctx, documentID); err != nil {
			return nil, err
		}
		freqs := indexer.SurnameShares{}
		pages, filed, err := w.plan(ctx, documentID, w.model, func(e indexer.Evidence) ([]chartscan.Patient, error) {
			return w.lookup(ctx, e, freqs)
		}, freqs)
		if err != nil {
			return nil, err
		}
		filings := make(map[int]chartscan.Filing, len(pages))
		counts := map[chartscan.PageStatus]int{}
		for i, f := range filed {
			if pages[i].Decided {
				counts[pages[i].Status]++ // a reviewer's decision stands
				continue
			}
			f.QACheck = f.Status == chartscan.StatusAuto && qaDrawn(documentID, pages[i].Number, w.pages.QARate)
			filings[pages[i].Number] = f
			counts[f.Status]++
		}
		err = w.store.SaveFilingsAt(ctx, documentID, gen, filings)
		if chartscan.ErrorCode(err) == chartscan.EConflict {
			if attempt < maxFilingAttempts {
				w.log.DebugContext(ctx, "filing computed before a decision; computing it again", "document_id", documentID, "attempt", attempt)
				if err := pause(ctx, attempt); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("%w: %w", errStale, err)
		}
		if err != nil {
			return nil, err
		}
		w.log.InfoContext(ctx, "document filed", "document_id", documentID, "pages", len(pages),
			"auto", counts[chartscan.StatusAuto], "review", counts[chartscan.StatusReview], "unmatched", counts[chartscan.StatusUnmatched])
		return counts, nil
	}
}

// Replay decides a document's pages again with model m, as filing would, without saving
// anything: the benchmark's tuning replays a batch under many settings. lookup is the
// EMPI's blocking look-up (Lookup, or a cache of it) and freqs the surname shares it
// records.
func (w *Worker) Replay(ctx context.Context, documentID string, m indexer.Model,
	lookup func(indexer.Evidence) ([]chartscan.Patient, error), freqs indexer.Frequencies) ([]chartscan.Page, []chartscan.Filing, error) {
	return w.plan(ctx, documentID, m, lookup, freqs)
}

// Lookup is the look-up filing uses, for Replay.
func (w *Worker) Lookup(ctx context.Context, e indexer.Evidence, freqs indexer.SurnameShares) ([]chartscan.Patient, error) {
	return w.lookup(ctx, e, freqs)
}

// plan computes the filing of every page of a document with model m: segments, their
// decisions, and the pages a poor scan sends to a person whatever they seemed to say.
func (w *Worker) plan(ctx context.Context, documentID string, m indexer.Model,
	lookup func(indexer.Evidence) ([]chartscan.Patient, error), freqs indexer.Frequencies) ([]chartscan.Page, []chartscan.Filing, error) {
	pages, err := w.store.MatchPages(ctx, documentID)
	if err != nil {
		return nil, nil, err
	}
	evidence := make([]indexer.PageEvidence, len(pages))
	for i, pg := range pages {
		evidence[i] = indexer.PageEvidence{Identifiers: pg.Identifiers, SplitBefore: pg.SplitBefore}
		switch {
		case pg.Status == chartscan.StatusFailed:
			evidence[i].Kind = indexer.PageFailed
		case pg.Status == chartscan.StatusBlank:
			evidence[i].Kind = indexer.PageBlank
		case pg.CoverMRN != "":
			evidence[i].Kind, evidence[i].CoverMRN = indexer.PageCover, pg.CoverMRN
		case pg.Decided && pg.Status == chartscan.StatusConfirmed && pg.MRN != "":
			// The reviewer's patient is certain, and carries the pages after it.
			evidence[i].Kind, evidence[i].CoverMRN = indexer.PageConfirmed, pg.MRN
		case pg.Separator, pg.Status == chartscan.StatusSeparator, pg.Decided:
			evidence[i].Kind = indexer.PageSeparator
		}
	}
	filed, err := indexer.FileSegments(evidence, m, lookup, freqs)
	if err != nil {
		return nil, nil, err
	}
	for i := range filed {
		// Never file on weak text: a poor scan, or a page of handwriting or a photo with
		// little that OCR read confidently, goes to a person whatever it seemed to say —
		// even as a continuation page, whose filing would be a guess from its position.
		if evidence[i].Kind == "" && (pages[i].LittleText || pages[i].Quality < w.pages.QualityFloor) {
			filed[i].Status = chartscan.StatusReview
			if pages[i].LittleText {
				filed[i].Reason = "poor scan: little recognizable text (handwriting or a photo?)"
			} else {
				filed[i].Reason = "poor scan: the text was read with low confidence"
			}
		}
	}
	return pages, filed, nil
}

// qaDrawn reports whether a filed page is drawn for a quality check: a hash of the page
// decides, so each page is drawn with probability rate, independently of the others, and
// filing it again draws it again the same way.
func qaDrawn(documentID string, page int, rate float64) bool {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", documentID, page))
	return float64(binary.BigEndian.Uint64(h[:8])>>11)/(1<<53) < rate
}

// lookup runs a segment's blocking queries — the MRN read and every MRN one OCR
// confusion or transposition away that passes the check digit, the surname (phonetic and
// trigram) with the birth year, the exact birth date — and records the surname shares of
// what it found, for the term-frequency adjustment.
func (w *Worker) lookup(ctx context.Context, e indexer.Evidence, freqs indexer.SurnameShares) ([]chartscan.Patient, error) {
	q := w.model.Query(e)
	if q.MRNs == nil && q.Family == "" && q.BirthDate == "" {
		return nil, nil
	}
	cands, shares, err := w.store.CandidatesWithShares(ctx, q, candidateLimit)
	if err != nil || len(cands) == 0 {
		return cands, err
	}
	for _, c := range cands {
		freqs[indexer.NormalizeName(c.Family)] = shares[strings.ToLower(c.Family)]
	}
	return cands, nil
}

// reviewAll sends every page of a document that is not filed yet to review. Like file,
// it saves only if no decision landed since it read the pages.
func (w *Worker) reviewAll(ctx context.Context, documentID string) error {
	for attempt := 1; ; attempt++ {
		gen, err := w.store.FilingGeneration(ctx, documentID)
		if err != nil {
			return err
		}
		pages, err := w.store.MatchPages(ctx, documentID)
		if err != nil {
			return err
		}
		filings := map[int]chartscan.Filing{}
		for _, pg := range pages {
			if pg.Status == chartscan.StatusPending {
				filings[pg.Number] = chartscan.Filing{Status: chartscan.StatusReview, Reason: "automatic filing failed"}
			}
		}
		err = w.store.SaveFilingsAt(ctx, documentID, gen, filings)
		if chartscan.ErrorCode(err) != chartscan.EConflict || attempt == maxFilingAttempts {
			return err
		}
		if err := pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// Reconcile puts back work that Redis lost or a crash dropped: documents still queued are
// split again, and pages of processing documents go back to the stage they stopped at.
// Task ids make it safe while the work is in fact still in flight. A task Asynq archived
// without its handler's last word — its worker died on every attempt, the mark of an
// input that crashes Tesseract or pdfcpu — fails its page or document instead of looping.
// It looks only at documents untouched for olderThan, and returns how many it saw.
func (w *Worker) Reconcile(ctx context.Context, olderThan time.Duration) (int, error) {
	docs, err := w.store.Unfinished(ctx, olderThan)
	if err != nil {
		return 0, err
	}
	for _, d := range docs {
		if err := w.reconcile(ctx, d); err != nil {
			return 0, err
		}
	}
	return len(docs), nil
}

func (w *Worker) reconcile(ctx context.Context, d chartscan.Document) error {
	if d.Status == chartscan.DocQueued || d.PageCount == 0 {
		return w.requeue(ctx, QueueSplit, splitID(d.ID), func() error {
			return w.store.FailDocument(ctx, d.ID, "the file could not be processed; it stopped the reader every time it was tried")
		})(NewSplitTask(d.ID))
	}
	pending, err := w.store.PagesNotDone(ctx, d.ID)
	if err != nil {
		return err
	}
	for n, read := range pending {
		failPage := func() error {
			if err := w.store.FailPage(ctx, d.ID, n, "the page stopped the reader every time it was tried; it is kept and can be re-run"); err != nil {
				return err
			}
			return w.pageDone(ctx, d.ID, n)
		}
		if read {
			err = w.requeue(ctx, QueueMatch, extractID(d.ID, n), failPage)(NewExtractTask(d.ID, n))
		} else {
			err = w.requeue(ctx, QueueOCR, ocrID(d.ID, n), failPage)(NewOCRTask(d.ID, n))
		}
		if err != nil {
			return err
		}
	}
	if len(pending) == 0 {
		return w.requeue(ctx, QueueMatch, matchID(d.ID), func() error { return w.reviewAll(ctx, d.ID) })(NewMatchTask(d.ID))
	}
	return nil
}

// requeue enqueues t unless a task with its id exists; if that task is archived (given
// up without its handler recording why), onArchived records the failure instead.
func (w *Worker) requeue(ctx context.Context, queue, id string, onArchived func() error) func(*asynq.Task, error) error {
	return func(t *asynq.Task, err error) error {
		if err != nil {
			return err
		}
		return w.requeueTask(ctx, queue, id, t, onArchived)
	}
}

func (w *Worker) requeueTask(ctx context.Context, queue, id string, t *asynq.Task, onArchived func() error) error {
	_, err := w.queue.EnqueueContext(ctx, t)
	if err == nil || (!errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask)) {
		return err
	}
	if w.inspect == nil {
		return nil
	}
	info, err := w.inspect.GetTaskInfo(queue, id)
	if err != nil {
		return nil // gone since the conflict: the next reconcile enqueues it
	}
	if info.State == asynq.TaskStateArchived {
		w.log.WarnContext(ctx, "task archived without a recorded failure; failing its work", "task_id", id)
		return onArchived()
	}
	return nil
}
