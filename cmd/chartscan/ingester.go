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
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(1024) // a short file peeks short; that is its whole head
	kind := ocr.Sniff(head)
	sha, n, err := in.objects.PutOriginal(ctx, br, size, kind.MIMEType())
	if err != nil {
		return chartscan.Document{}, false, err
	}
	doc, created, err := in.db.AddDocument(ctx, batchID, chartscan.Document{
		ID: uuid.NewString(), SHA256: sha, FileName: name, ContentType: kind.MIMEType(), Size: n,
	})
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
