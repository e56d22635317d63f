// Package worker holds chartscan's Asynq tasks — scan:split, page:ocr, page:extract and
// document:match — with their payloads, constructors and handlers, and the fan-in that
// starts a document's match when its last page is read.
//
// Every handler is safe to run twice: object keys are deterministic, rows are upserted,
// each stage checks what is already done, and task ids make a repeated enqueue a no-op.
// Redis holds work in flight and progress counters, never the only copy of a fact:
// Reconcile rebuilds lost work from PostgreSQL.
package worker
