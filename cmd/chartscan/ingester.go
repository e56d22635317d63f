package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

// ingester takes one uploaded file into a batch: the CLI's ingest and the HTTP upload
// share it, so both store, deduplicate and enqueue the same way.
type ingester struct {
	db      *storage.DB
	objects *storage.Objects
	queue   *asynq.Client
	log     *slog.Logger
}

func (a *app) ingester() *ingester {
	return &ingester{db: a.db, objects: a.objects, queue: a.queue, log: a.log}
}

// Ingest streams r (size bytes, -1 if unknown) to MinIO once, records the document in
// batchID under name and enqueues its split. A file whose content is already stored is
// the same document: created is false and nothing is enqueued.
func (in *ingester) Ingest(ctx context.Context, batchID, name string, r io.Reader, size int64) (chartscan.Document, bool, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	head, _ := br.Peek(1024) // a short file peeks short; that is its whole head
	kind := ocr.Sniff(head)
	sha, n, err := in.objects.PutOriginal(ctx, br, size, kind.MIMEType())
	if err != nil {
		if src.whole(size) && storage.Transient(err) {
			return chartscan.Document{}, false, unavailable("the file store is not answering, so nothing was stored", err)
		}
		return chartscan.Document{}, false, err
	}
	doc, created, err := in.db.AddDocument(ctx, batchID, chartscan.Document{
		ID: uuid.NewString(), SHA256: sha, FileName: name, ContentType: kind.MIMEType(), Size: n,
	})
	if err != nil && storage.Transient(err) {
		// The original is stored under its content address; the same upload again,
		// once the database answers, finds it and records the document.
		return doc, false, unavailable("the database is not answering, so the file was not recorded", err)
	}
	if err != nil || !created {
		return doc, created, err
	}
	t, err := worker.NewSplitTask(doc.ID)
	if err != nil {
		return doc, true, err
	}
	if _, err := in.queue.EnqueueContext(ctx, t); err != nil {
		// The document is stored and queued in PostgreSQL; a worker's reconcile splits
		// it even though this enqueue failed, so the upload still succeeds.
		in.log.Warn("enqueue split failed; reconcile will pick the document up", "document_id", doc.ID, "error", err)
	}
	return doc, true, nil
}

// eUnavailable is the error code of an upload a store did not take: nothing of it was
// recorded, and the same upload later succeeds. Its message is the clerk's to read.
const eUnavailable = "unavailable"

func unavailable(what string, err error) error {
	return &chartscan.Error{Code: eUnavailable, Err: err, Message: what + "; try again in a few minutes"}
}

// sourceReader remembers how much of the upload itself was read and whether reading it
// failed: a clerk's connection cut off, or a body shorter than its size, is no fault of
// the stores.
type sourceReader struct {
	r   io.Reader
	n   int64
	eof bool
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.err = err
	}
	return n, err
}

// whole reports whether the upload gave no reason to fail: no read error, and not
// ended short of its size.
func (s *sourceReader) whole(size int64) bool {
	return s.err == nil && !(s.eof && size >= 0 && s.n < size)
}
