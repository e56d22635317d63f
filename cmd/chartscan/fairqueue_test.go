package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/worker"
)

// TestOCRQueueIsFairByBatch queues a clerk's archive (150 pages), then another clerk's
// chart (5 pages), then an urgent chart (3 pages), and runs one worker slot through
// them against real Redis. The urgent pages are read among the first, and the second
// clerk's pages long before the archive is done: batches share the OCR workers. Before,
// one FIFO ocr queue read all 150 archive pages first.
func TestOCRQueueIsFairByBatch(t *testing.T) {
	e := stacktest.New(t)
	opt, err := redis.ParseURL(e.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	batches := map[string]struct {
		batch  string
		urgent bool
	}{"doc-a": {"archive", false}, "doc-b": {"chart", false}, "doc-c": {"waiting", true}, "doc-d": {"other", false}}
	lookups := 0
	fq := newFairQueue(client, insp, rdb, func(_ context.Context, doc string) (string, bool, error) {
		lookups++
		b := batches[doc]
		return b.batch, b.urgent, nil
	})
	ctx := context.Background()
	enqueue := func(doc string, pages int) {
		t.Helper()
		for n := 1; n <= pages; n++ {
			task, _ := worker.NewOCRTask(doc, n)
			if _, err := fq.EnqueueContext(ctx, task); err != nil {
				t.Fatalf("enqueue %s page %d: %v", doc, n, err)
			}
		}
	}
	enqueue("doc-a", 150)
	enqueue("doc-b", 5)
	enqueue("doc-c", 3)
	if lookups != 3 {
		t.Errorf("%d batch look-ups for 3 documents, want one each", lookups)
	}

	// The worker finds, refuses as duplicate and deletes tasks by the queue it knows.
	fi := fairInspector{insp}
	a, errA := fi.GetTaskInfo(worker.QueueOCR, "ocr:doc-a:1")
	b, errB := fi.GetTaskInfo(worker.QueueOCR, "ocr:doc-b:1")
	c, errC := fi.GetTaskInfo(worker.QueueOCR, "ocr:doc-c:1")
	if errA != nil || errB != nil || errC != nil || a.Queue == b.Queue || !strings.HasPrefix(a.Queue, "ocr:") || c.Queue != queueOCRUrgent {
		t.Fatalf("tasks found in %v %v %v (%v %v %v): want two shards and the urgent queue", a, b, c, errA, errB, errC)
	}
	again, _ := worker.NewOCRTask("doc-b", 1)
	if _, err := fq.EnqueueContext(ctx, again); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Errorf("a page queued again: %v, want the task id conflict in its shard", err)
	}
	enqueue("doc-d", 1)
	if err := fi.DeleteTask(worker.QueueOCR, "ocr:doc-d:1"); err != nil {
		t.Errorf("delete an OCR task by the ocr queue: %v", err)
	}
	if _, err := fi.GetTaskInfo(worker.QueueOCR, "ocr:doc-d:1"); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("a deleted task: %v, want not found", err)
	}

	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(worker.TypeOCR, func(_ context.Context, task *asynq.Task) error {
		doc := strings.Split(string(task.Payload()), `"`)[3]
		mu.Lock()
		defer mu.Unlock()
		if order = append(order, doc); len(order) == 158 {
			close(done)
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: serverQueues(), LogLevel: asynq.FatalLevel})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("only %d of 158 tasks run in 2 minutes", len(order))
	}
	mu.Lock()
	defer mu.Unlock()
	lastC, lastB := lastIndex(order, "doc-c"), lastIndex(order, "doc-b")
	if lastC >= 12 {
		t.Errorf("the urgent chart's last page was read %dth of 158, want among the first 12", lastC+1)
	}
	if lastB >= 60 {
		t.Errorf("the second clerk's last page was read %dth of 158, want long before the archive's 150 pages (by the 60th)", lastB+1)
	}
	t.Logf("urgent chart done at %d, second clerk's chart at %d, archive at %d", lastC+1, lastB+1, lastIndex(order, "doc-a")+1)
}

func lastIndex(xs []string, x string) int {
	for i := len(xs) - 1; i >= 0; i-- {
		if xs[i] == x {
			return i
		}
	}
	return -1
}
