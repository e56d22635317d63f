package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/chartscan/chartscan"
)

// errStale is returned when a document's filing was computed again maxFilingAttempts
// times and each time a reviewer decided before it could be saved.
var errStale = errors.New("reviewers kept deciding while the document was filed")

// maxFilingAttempts bounds how often a filing is computed again because a decision
// landed while it was computed. A person decides a page in seconds and a filing takes
// milliseconds, so a few suffice; more than this means something keeps bumping.
const maxFilingAttempts = 20

// pause waits before the next attempt at a filing: a few milliseconds, more with each
// attempt and at random, so two re-filings racing one reviewer do not collide again.
func pause(ctx context.Context, attempt int) error {
	d := time.Duration(attempt)*5*time.Millisecond + rand.N(10*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// readyToFile refuses to file a document whose pages are not all through extraction or
// that failed: its pages are being read (a re-run) and its match task files it later.
func (w *Worker) readyToFile(ctx context.Context, documentID string) error {
	doc, err := w.store.Document(ctx, documentID)
	if err != nil {
		return err
	}
	if doc.Status == chartscan.DocFailed {
		return chartscan.Errorf(chartscan.EInvalid, "document %s failed: re-run it instead of re-filing it", documentID)
	}
	done, err := w.store.PagesDone(ctx, documentID)
	if err != nil {
		return err
	}
	if doc.PageCount == 0 || done < doc.PageCount {
		return chartscan.Errorf(chartscan.EConflict, "document %s is still being read (%d of %d pages): it is filed when it finishes", documentID, done, doc.PageCount)
	}
	return nil
}
