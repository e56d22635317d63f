// Package chartscan holds the domain types of a system that digitizes paper medical
// charts: batches of scans, their documents and pages, the patient identifiers read from
// a page, EMPI patients, and the filing decision that ties a page to a patient.
//
// It imports only the standard library. Technology lives in sub-packages: ocr (pixels to
// text), indexer (text to patient), storage (MinIO and PostgreSQL), worker (Asynq tasks),
// web (HTTP), and cmd/chartscan wires them together.
package chartscan
