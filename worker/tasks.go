package worker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// Task types.
const (
	TypeSplit   = "scan:split"
	TypeOCR     = "page:ocr"
	TypeExtract = "page:extract"
	TypeMatch   = "document:match"
	// TypeRefile files a finished document's undecided pages again after a reviewer's
	// decision (or its undo), outside the reviewer's request.
	TypeRefile = "document:refile"
)

// Queues, and the weight each gets when a worker picks its next task. The light stages
// come first so a document whose pages are read is filed at once, and OCR — the only
// heavy work — takes what is left.
const (
	QueueMatch = "match"
	QueueSplit = "split"
	QueueOCR   = "ocr"
)

// Queues maps each queue to its priority weight, for asynq.Config.Queues.
var Queues = map[string]int{QueueMatch: 6, QueueSplit: 3, QueueOCR: 2}

// retention keeps a finished task's id for a day, so an enqueue repeated within that time
// (a retry of the stage before, a reconcile) is refused as a duplicate.
const retention = 24 * time.Hour

// DocumentPayload names a document. Payloads hold ids only: never PHI.
type DocumentPayload struct {
	DocumentID string `json:"document_id"`
}

// PagePayload names one page of a document.
type PagePayload struct {
	DocumentID string `json:"document_id"`
	Page       int    `json:"page"`
	// QueuedAt is when the task was made (Unix nanoseconds), for the queue-wait stage
	// (chartscan_stage_seconds); 0 in tasks made before it existed.
	QueuedAt int64 `json:"queued_at,omitempty"`
}

// NewSplitTask returns the task that splits a stored document into pages.
func NewSplitTask(documentID string) (*asynq.Task, error) {
	b, err := json.Marshal(DocumentPayload{DocumentID: documentID})
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeSplit, b,
		asynq.TaskID(splitID(documentID)), asynq.Queue(QueueSplit),
		asynq.MaxRetry(maxRetry), asynq.Timeout(30*time.Minute), asynq.Retention(retention)), nil
}

// NewOCRTask returns the task that reads one page with Tesseract.
func NewOCRTask(documentID string, page int) (*asynq.Task, error) {
	b, err := json.Marshal(PagePayload{DocumentID: documentID, Page: page, QueuedAt: time.Now().UnixNano()})
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeOCR, b,
		asynq.TaskID(ocrID(documentID, page)), asynq.Queue(QueueOCR),
		asynq.MaxRetry(maxRetry), asynq.Timeout(5*time.Minute), asynq.Retention(retention)), nil
}

// NewExtractTask returns the task that reads identifiers from one page's words.
func NewExtractTask(documentID string, page int) (*asynq.Task, error) {
	b, err := json.Marshal(PagePayload{DocumentID: documentID, Page: page, QueuedAt: time.Now().UnixNano()})
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeExtract, b,
		asynq.TaskID(extractID(documentID, page)), asynq.Queue(QueueMatch),
		asynq.MaxRetry(maxRetry), asynq.Timeout(time.Minute), asynq.Retention(retention)), nil
}

// NewMatchTask returns the task that files every page of a document.
func NewMatchTask(documentID string) (*asynq.Task, error) {
	b, err := json.Marshal(DocumentPayload{DocumentID: documentID})
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeMatch, b,
		asynq.TaskID(matchID(documentID)), asynq.Queue(QueueMatch),
		asynq.MaxRetry(maxRetry), asynq.Timeout(5*time.Minute), asynq.Retention(retention)), nil
}

// NewRefileTask returns the task that files a finished document again after a review
// decision. Each decision gets its own task: a re-filing already done saw the pages as
// they were before it.
func NewRefileTask(documentID string) (*asynq.Task, error) {
	b, err := json.Marshal(DocumentPayload{DocumentID: documentID})
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeRefile, b, asynq.Queue(QueueMatch),
		asynq.MaxRetry(maxRetry), asynq.Timeout(5*time.Minute), asynq.Retention(time.Hour)), nil
}

// Task ids: one per stage of a document or page, so a repeat is the same task.
func splitID(doc string) string             { return "split:" + doc }
func ocrID(doc string, page int) string     { return "ocr:" + doc + ":" + strconv.Itoa(page) }
func extractID(doc string, page int) string { return "extract:" + doc + ":" + strconv.Itoa(page) }
func matchID(doc string) string             { return "match:" + doc }

func decode[T any](t *asynq.Task) (T, error) {
	var p T
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return p, fmt.Errorf("%s payload: %v: %w", t.Type(), err, asynq.SkipRetry)
	}
	return p, nil
}
