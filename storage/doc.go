// Package storage keeps chartscan's state: scans, page images and OCR artefacts in MinIO
// (Objects), and the index — batches, documents, pages, identifiers, EMPI patients and
// filings — in PostgreSQL (DB), whose schema lives in migrations/.
//
// Object keys are deterministic, so a repeated task overwrites rather than duplicates:
//
//	originals/<sha256>            an uploaded file, content-addressed
//	pages/<document>/<n>.<ext>    the image of page n (1-based) as OCR read it
//	words/<document>/<n>.json     the words of page n, for pages read before migration
//	                              00020 (since then they are kept in the page's row)
package storage
