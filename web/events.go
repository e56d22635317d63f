package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/chartscan/chartscan/storage"
)

// Live progress: the worker publishes an event on Redis whenever a page or document moves;
// each stream recounts its batch in PostgreSQL (the source of truth) at most every
// debounce, so a burst of events costs one query, and at least every poll, so a lost
// event (or no Redis at all) only delays an update.
const (
	debounce = 250 * time.Millisecond
	poll     = 3 * time.Second
)

// apiBatchEvents streams a batch's progress as server-sent events ("progress", JSON of
// progressView) until the client goes away. It keeps streaming after "done", because a
// clerk may still be adding files to the batch.
func (s *Server) apiBatchEvents(w http.ResponseWriter, r *http.Request, u *storage.User) error {
	b, err := s.batchFor(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	release, err := s.streams.acquire(u.ID, s.limits.StreamsPerUser)
	if err != nil {
		return err
	}
	defer release()
	// Exempt from the server's fixed timeouts: each event (a keep-alive at least every
	// poll) moves the deadlines on, and a client that stops reading is cut.
	w = s.streaming(w)
	ctx := r.Context()
	var moved <-chan string
	if s.cfg.Progress != nil {
		if moved, err = s.cfg.Progress(ctx); err != nil {
			s.log.Warn("progress subscription failed; polling", "error", err)
			moved = nil
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var last progressView
	send := func(force bool) error {
		p, err := s.progress(ctx, b.ID)
		if err != nil {
			return err
		}
		if !force && reflect.DeepEqual(p, last) {
			return nil
		}
		last = p
		data, _ := json.Marshal(p)
		if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", data); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send(true); err != nil {
		return nil // the client left, or the first count failed; either way the stream is over
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-moved:
			if !ok {
				moved = nil
				continue
			}
			if due == nil {
				due = time.After(debounce)
			}
		case <-due:
			due = nil
			if send(false) != nil {
				return nil
			}
		case <-ticker.C:
			if send(false) != nil {
				return nil
			}
			// A comment keeps proxies from closing an idle stream.
			fmt.Fprint(w, ": keep-alive\n\n")
			rc.Flush()
		}
	}
}
