package storage

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// reportSnapshot reads every count of a report from one snapshot.
var reportSnapshot = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// BatchReport is a batch's reconciliation (issue 14, item 6): what a records manager
// signs off. Every page the batch's scans were split into is counted once, by where it
// stands; every page filed to a patient is in exactly one live patient document; the
// documents are counted by state. Check says whether the counts add up.
type BatchReport struct {
	BatchID     string `json:"batch_id"`
	Files       int    `json:"files"`
	FilesFailed int    `json:"files_failed"` // could not be read at all (their pages, if any were split out, count as failed)
	Pages       struct {
		Scanned   int `json:"scanned"`   // every page split out of the batch's scans
		Filed     int `json:"filed"`     // filed to a patient: Auto + Confirmed
		Auto      int `json:"auto"`      // by the matcher
		Confirmed int `json:"confirmed"` // by a reviewer
		Review    int `json:"review"`    // waiting for a reviewer
		Unmatched int `json:"unmatched"` // nobody in the EMPI
		Failed    int `json:"failed"`    // could not be read
		Blank     int `json:"blank"`     // empty pages (duplex backs)
		Separator int `json:"separator"` // cover and separator sheets
		Pending   int `json:"pending"`   // still being read
		Other     int `json:"other"`     // in no status above: never, unless a status is added and not counted here
	} `json:"pages"`
	// PatientDocuments counts the live patient documents (each document's current
	// version) by state; Superseded counts the versions replaced or withdrawn.
	PatientDocuments struct {
		Total        int `json:"total"`
		Pending      int `json:"pending"`
		Ready        int `json:"ready"`
		Delivered    int `json:"delivered"`
		Acknowledged int `json:"acknowledged"`
		Rejected     int `json:"rejected"`
		Superseded   int `json:"superseded"`
		Withdrawn    int `json:"withdrawn"` // of Superseded, those withdrawn with no replacement
	} `json:"patient_documents"`
	// PagesInDocuments counts the pages of the live patient documents by the document's
	// state, and DistinctPagesInDocuments and FiledPagesInDocuments the pages among them
	// once each and those filed: all three equal Pages.Filed when the report adds up.
	PagesInDocuments         map[string]int `json:"pages_in_documents"`
	DistinctPagesInDocuments int            `json:"distinct_pages_in_documents"`
	FiledPagesInDocuments    int            `json:"filed_pages_in_documents"`
	// Complete is true when no page is being read or in review and no document pending.
	Complete bool `json:"complete"`
}

// Check reports whether the counts add up: the pages scanned are the sum of the pages by
// status, the pages filed those filed automatically and by a reviewer, every filed page
// is in one live patient document and no other page is, and the live documents are the
// sum of their states. The error says which sum fails, with its numbers (no PHI).
func (r BatchReport) Check() error {
	p, d := r.Pages, r.PatientDocuments
	if sum := p.Filed + p.Review + p.Unmatched + p.Failed + p.Blank + p.Separator + p.Pending + p.Other; sum != p.Scanned || p.Other != 0 {
		return fmt.Errorf("pages do not add up: %d scanned, %d counted by status (%d in no known status)", p.Scanned, sum, p.Other)
	}
	if p.Auto+p.Confirmed != p.Filed {
		return fmt.Errorf("pages do not add up: %d filed, %d auto + %d confirmed", p.Filed, p.Auto, p.Confirmed)
	}
	inDocs := 0
	for _, n := range r.PagesInDocuments {
		inDocs += n
	}
	if inDocs != p.Filed || r.DistinctPagesInDocuments != p.Filed || r.FiledPagesInDocuments != p.Filed {
		return fmt.Errorf("pages do not add up: %d filed, %d in patient documents (%d distinct, %d of them filed)",
			p.Filed, inDocs, r.DistinctPagesInDocuments, r.FiledPagesInDocuments)
	}
	if sum := d.Pending + d.Ready + d.Delivered + d.Acknowledged + d.Rejected; sum != d.Total {
		return fmt.Errorf("patient documents do not add up: %d live, %d counted by state", d.Total, sum)
	}
	return nil
}

// BatchReport counts a batch's pages and patient documents, and checks that they add up
// (BatchReport.Check): a report that does not is an error, never printed as if it did.
// An unknown batch is ENotFound.
func (db *DB) BatchReport(ctx context.Context, batchID string) (BatchReport, error) {
	r := BatchReport{BatchID: batchID, PagesInDocuments: map[string]int{}}
	if _, err := db.batchDocumentIDs(ctx, batchID); err != nil {
		return r, err
	}
	// One snapshot for every count, so a page filed meanwhile cannot unbalance them.
	tx, err := db.pool.BeginTx(ctx, reportSnapshot)
	if err != nil {
		return r, err
	}
	defer tx.Rollback(ctx)
	err = tx.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE d.status = 'failed')
		FROM batch_documents bd JOIN documents d ON d.id = bd.document_id WHERE bd.batch_id::text = $1`, batchID).Scan(&r.Files, &r.FilesFailed)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	p := &r.Pages
	err = tx.QueryRow(ctx, `
		SELECT count(*),
		       count(*) FILTER (WHERE p.status = 'auto'), count(*) FILTER (WHERE p.status = 'confirmed'),
		       count(*) FILTER (WHERE p.status = 'review'), count(*) FILTER (WHERE p.status = 'unmatched'),
		       count(*) FILTER (WHERE p.status = 'failed'), count(*) FILTER (WHERE p.status = 'blank'),
		       count(*) FILTER (WHERE p.status = 'separator'), count(*) FILTER (WHERE p.status = 'pending'),
		       count(*) FILTER (WHERE p.status NOT IN ('auto', 'confirmed', 'review', 'unmatched', 'failed', 'blank', 'separator', 'pending'))
		FROM batch_documents bd JOIN pages p ON p.document_id = bd.document_id WHERE bd.batch_id::text = $1`, batchID).Scan(
		&p.Scanned, &p.Auto, &p.Confirmed, &p.Review, &p.Unmatched, &p.Failed, &p.Blank, &p.Separator, &p.Pending, &p.Other)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	p.Filed = p.Auto + p.Confirmed
	d := &r.PatientDocuments
	err = tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE state <> 'superseded'),
		       count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'ready'),
		       count(*) FILTER (WHERE state = 'delivered'), count(*) FILTER (WHERE state = 'acknowledged'),
		       count(*) FILTER (WHERE state = 'rejected'), count(*) FILTER (WHERE state = 'superseded'),
		       count(*) FILTER (WHERE state = 'superseded' AND withdraw)
		FROM patient_documents WHERE document_id IN (SELECT document_id FROM batch_documents WHERE batch_id::text = $1)`, batchID).Scan(
		&d.Total, &d.Pending, &d.Ready, &d.Delivered, &d.Acknowledged, &d.Rejected, &d.Superseded, &d.Withdrawn)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT pd.state, count(*) FROM patient_documents pd JOIN patient_document_pages pp USING (id, version)
		WHERE pd.state <> 'superseded' AND pd.document_id IN (SELECT document_id FROM batch_documents WHERE batch_id::text = $1)
		GROUP BY pd.state`, batchID)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return r, fmt.Errorf("report: %w", err)
		}
		r.PagesInDocuments[s] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	err = tx.QueryRow(ctx, `
		SELECT count(DISTINCT (pp.document_id, pp.page_no)),
		       count(DISTINCT (pp.document_id, pp.page_no)) FILTER (WHERE p.status IN ('auto', 'confirmed'))
		FROM patient_documents pd JOIN patient_document_pages pp USING (id, version)
		JOIN pages p ON p.document_id = pp.document_id AND p.page_no = pp.page_no
		WHERE pd.state <> 'superseded' AND pd.document_id IN (SELECT document_id FROM batch_documents WHERE batch_id::text = $1)`, batchID).Scan(
		&r.DistinctPagesInDocuments, &r.FiledPagesInDocuments)
	if err != nil {
		return r, fmt.Errorf("report: %w", err)
	}
	r.Complete = p.Pending == 0 && p.Review == 0 && d.Pending == 0 && r.Files > 0
	if err := r.Check(); err != nil {
		return r, &chartscan.Error{Code: chartscan.EInternal, Message: "the reconciliation of batch " + batchID + " does not add up; nothing to sign off", Err: err}
	}
	return r, nil
}
