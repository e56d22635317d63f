package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan/worker"
)

// The OCR stage is the only heavy one, and one queue of it is first come, first served:
// a clerk's 50,000-page archive would hold every worker for a day while a two-page chart
// for a waiting patient sat behind it. So OCR tasks are spread over shard queues, a
// batch per shard (the emptiest when its first page is queued, kept for the batch), and
// Asynq, which takes each task from a queue drawn by weight among those that have one,
// serves the busy shards in turn: batches share the OCR workers about evenly, however
// big each is. Urgent batches (a patient is waiting) have a queue of their own that is
// drawn first almost always. Only the worker's enqueues go through here; the task ids
// are still unique per page, in the page's shard.
const (
	ocrShards      = 8
	queueOCRUrgent = "ocr:urgent"
	shardKeyTTL    = 7 * 24 * time.Hour
)

func ocrShard(i int) string { return fmt.Sprintf("ocr:%d", i) }

// ocrQueues lists every queue an OCR task may be in: the plain one (tasks queued before
// the shards), the urgent one and the shards.
func ocrQueues() []string {
	qs := []string{worker.QueueOCR, queueOCRUrgent}
	for i := range ocrShards {
		qs = append(qs, ocrShard(i))
	}
	return qs
}

// serverQueues is the workers' asynq.Config.Queues: the light stages keep their lead
// over OCR as a whole (worker.Queues' weights, scaled), each OCR shard weighs the same,
// and the urgent queue outweighs all the shards together.
func serverQueues() map[string]int {
	qs := map[string]int{}
	for q, w := range worker.Queues {
		qs[q] = w * ocrShards
	}
	qs[worker.QueueOCR] = worker.Queues[worker.QueueOCR] // drains what was queued before
	for i := range ocrShards {
		qs[ocrShard(i)] = worker.Queues[worker.QueueOCR]
	}
	qs[queueOCRUrgent] = 2 * ocrShards * worker.Queues[worker.QueueOCR]
	return qs
}

// batchLookup names a document's batch and whether it is urgent: storage.DB.DocumentBatch.
type batchLookup func(ctx context.Context, documentID string) (batchID string, urgent bool, err error)

// fairQueue is the worker's Enqueuer: OCR tasks go to their batch's queue, the others
// where their constructor put them.
type fairQueue struct {
	client  worker.Enqueuer
	insp    *asynq.Inspector
	rdb     redis.UniversalClient
	batchOf batchLookup

	mu   sync.Mutex
	docs map[string]string // document → its OCR queue, for the pages after the first
}

func newFairQueue(client worker.Enqueuer, insp *asynq.Inspector, rdb redis.UniversalClient, batchOf batchLookup) *fairQueue {
	return &fairQueue{client: client, insp: insp, rdb: rdb, batchOf: batchOf, docs: map[string]string{}}
}

// EnqueueContext enqueues t, an OCR task in its batch's queue.
func (f *fairQueue) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	if t.Type() != worker.TypeOCR {
		return f.client.EnqueueContext(ctx, t, opts...)
	}
	var p worker.PagePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return nil, fmt.Errorf("ocr task payload: %w", err)
	}
	q, err := f.queueFor(ctx, p.DocumentID)
	if err != nil {
		return nil, err
	}
	return f.client.EnqueueContext(ctx, t, append(opts, asynq.Queue(q))...)
}

// queueFor returns the OCR queue of a document's pages.
func (f *fairQueue) queueFor(ctx context.Context, documentID string) (string, error) {
	f.mu.Lock()
	q, ok := f.docs[documentID]
	f.mu.Unlock()
	if ok {
		return q, nil
	}
	batch, urgent, err := f.batchOf(ctx, documentID)
	if err != nil {
		return "", err
	}
	q = queueOCRUrgent
	if !urgent {
		if q, err = f.shardOf(ctx, batch); err != nil {
			return "", err
		}
	}
	f.mu.Lock()
	if len(f.docs) > 10_000 { // a worker's lifetime of documents: forget, and look up again
		clear(f.docs)
	}
	f.docs[documentID] = q
	f.mu.Unlock()
	return q, nil
}

// shardOf returns a batch's shard, choosing the emptiest for a batch that has none yet.
// The choice is kept in Redis, so every worker queues a batch's pages in one shard.
func (f *fairQueue) shardOf(ctx context.Context, batch string) (string, error) {
	key := "chartscan:ocr-shard:" + batch
	q, err := f.rdb.Get(ctx, key).Result()
	if err == nil {
		return q, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("ocr shard of batch: %w", err)
	}
	known, err := f.insp.Queues()
	if err != nil {
		return "", fmt.Errorf("ocr shard sizes: %w", err)
	}
	best, least := "", -1
	for _, i := range rand.Perm(ocrShards) { // ties go anywhere
		n := 0 // a queue no task was ever put on is empty
		if slices.Contains(known, ocrShard(i)) {
			info, err := f.insp.GetQueueInfo(ocrShard(i))
			if err != nil {
				return "", fmt.Errorf("ocr shard sizes: %w", err)
			}
			n = info.Pending + info.Active + info.Scheduled + info.Retry
		}
		if least < 0 || n < least {
			best, least = ocrShard(i), n
		}
	}
	// Another worker may have chosen at the same time: the first choice stands.
	if _, err := f.rdb.SetNX(ctx, key, best, shardKeyTTL).Result(); err != nil {
		return "", fmt.Errorf("ocr shard of batch: %w", err)
	}
	return f.rdb.Get(ctx, key).Result()
}

// fairInspector finds and deletes tasks as the worker asks for them, by the queue their
// constructor names: an OCR task is looked for in every OCR queue.
type fairInspector struct{ *asynq.Inspector }

func notFound(err error) bool {
	return errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound)
}

// GetTaskInfo is asynq.Inspector.GetTaskInfo across the OCR queues.
func (i fairInspector) GetTaskInfo(queue, id string) (*asynq.TaskInfo, error) {
	if queue != worker.QueueOCR {
		return i.Inspector.GetTaskInfo(queue, id)
	}
	for _, q := range ocrQueues() {
		info, err := i.Inspector.GetTaskInfo(q, id)
		if err == nil || !notFound(err) {
			return info, err
		}
	}
	return nil, asynq.ErrTaskNotFound
}

// DeleteTask is asynq.Inspector.DeleteTask across the OCR queues.
func (i fairInspector) DeleteTask(queue, id string) error {
	if queue != worker.QueueOCR {
		return i.Inspector.DeleteTask(queue, id)
	}
	deleted := false
	for _, q := range ocrQueues() {
		err := i.Inspector.DeleteTask(q, id)
		switch {
		case err == nil:
			deleted = true
		case !notFound(err):
			return err
		}
	}
	if !deleted {
		return asynq.ErrTaskNotFound
	}
	return nil
}
