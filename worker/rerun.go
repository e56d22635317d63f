package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TaskDeleter deletes a task by queue and id: an *asynq.Inspector.
type TaskDeleter interface {
	DeleteTask(queue, id string) error
}

// Rerun queues the split of a document whose rows were put back to queued (a re-run of a
// failed document). The tasks of its earlier run keep their ids for a day, and archived
// ones for longer, so repeats are no-ops; they are deleted first, with the fan-in set,
// or the new run would be refused as a duplicate. Pages are numbered from 1 without
// gaps, so the deletion stops at the first page that had no task.
func Rerun(ctx context.Context, q Enqueuer, tasks TaskDeleter, rdb redis.UniversalClient, documentID string) error {
	return RerunPages(ctx, q, tasks, rdb, documentID, 0)
}

// RerunPages is Rerun for a document of pages pages whose failed pages were put back to
// be read again (the document to processing): every page's earlier tasks are deleted —
// a page's can be gone while a later one's is archived — and the split, finding the
// document split, queues the pages that are not done (see resume).
func RerunPages(ctx context.Context, q Enqueuer, tasks TaskDeleter, rdb redis.UniversalClient, documentID string, pages int) error {
	del := func(queue, id string) (bool, error) {
		err := tasks.DeleteTask(queue, id)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			return false, nil
		}
		return false, fmt.Errorf("delete task %s: %w", id, err)
	}
	for _, t := range []struct{ queue, id string }{{QueueSplit, splitID(documentID)}, {QueueMatch, matchID(documentID)}} {
		if _, err := del(t.queue, t.id); err != nil {
			return err
		}
	}
	for n := 1; ; n++ {
		ocr, err := del(QueueOCR, ocrID(documentID, n))
		if err != nil {
			return err
		}
		extract, err := del(QueueMatch, extractID(documentID, n))
		if err != nil {
			return err
		}
		if n >= pages && !ocr && !extract {
			break
		}
	}
	if err := rdb.Del(ctx, doneKey(documentID)).Err(); err != nil {
		return fmt.Errorf("clear fan-in: %w", err)
	}
	t, err := NewSplitTask(documentID)
	if err != nil {
		return err
	}
	if _, err := q.EnqueueContext(ctx, t); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue split: %w", err)
	}
	return nil
}
