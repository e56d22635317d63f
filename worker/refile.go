package worker

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// Refile files a finished document again with the worker's current matching model and
// the EMPI as it is now — after an EMPI import or merge, or a change of thresholds —
// without reading its pages again. With reextract, the identifiers of every page read so
// far are first extracted again from its stored words (after an extractor update).
// Pages a reviewer decided keep their filing: one found not in the EMPI ends its segment,
// and one filed to a patient names that patient, with certainty, for the pages without
// identifiers after it (as a cover sheet would). Failed, blank and separator pages are
// left as they are. It returns the pages per status, decided ones included. After every
// review decision the server queues it (NewRefileTask) for a worker to run.
//
// Refile is for documents whose pipeline has finished: one still being read is refused,
// since its match task will file it anyway.
func (w *Worker) Refile(ctx context.Context, documentID string, reextract bool) (map[chartscan.PageStatus]int, error) {
	doc, err := w.store.Document(ctx, documentID)
	if err != nil {
		return nil, err
	}
	switch doc.Status {
	case chartscan.DocFailed:
		return nil, chartscan.Errorf(chartscan.EInvalid, "document %s failed: re-run it instead of re-filing it", documentID)
	case chartscan.DocDone:
	default:
		return nil, chartscan.Errorf(chartscan.EConflict, "document %s is still being read (%s): it is filed when it finishes", documentID, doc.Status)
	}
	if reextract {
		for n := 1; n <= doc.PageCount; n++ {
			if err := w.reextract(ctx, documentID, n); err != nil {
				return nil, err
			}
		}
	}
	return w.file(ctx, documentID)
}

// reextract extracts one page's identifiers again from its stored words. Pages without
// words (failed, blank), separators and pages a reviewer confirmed are skipped.
func (w *Worker) reextract(ctx context.Context, documentID string, n int) error {
	page, err := w.store.Page(ctx, documentID, n)
	if err != nil {
		return err
	}
	switch page.Status {
	case chartscan.StatusFailed, chartscan.StatusBlank, chartscan.StatusSeparator, chartscan.StatusConfirmed:
		return nil
	}
	if !page.HasWords {
		return nil
	}
	return w.extractPage(ctx, page)
}

// HandleRefile files a document again after a reviewer's decision (TypeRefile): the
// pages the decision settles (those without identifiers after a page filed to a patient,
// the pages after a split) follow it. A document being read again is filed when its read
// finishes, so there is nothing to do then.
func (w *Worker) HandleRefile(ctx context.Context, t *asynq.Task) error {
	p, err := decode[DocumentPayload](t)
	if err != nil {
		return err
	}
	_, err = w.Refile(ctx, p.DocumentID, false)
	switch chartscan.ErrorCode(err) {
	case chartscan.EConflict, chartscan.EInvalid:
		return nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
