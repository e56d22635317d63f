package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// Patient document states (issue 14, item 1).
const (
	PDPending      = "pending"      // a page of its part of the scan is still in review, or being read
	PDReady        = "ready"        // to be delivered
	PDDelivered    = "delivered"    // sent; the EHR took it
	PDAcknowledged = "acknowledged" // the EHR acknowledged it
	PDRejected     = "rejected"     // the EHR refused it; Reason says why
	PDSuperseded   = "superseded"   // a later version, or a withdrawal, took its place
)

// PatientDocumentStates lists the states in the order reports show them.
var PatientDocumentStates = []string{PDPending, PDReady, PDDelivered, PDAcknowledged, PDRejected, PDSuperseded}

// PatientDocument is one version of a patient document: the pages of one scan, in one
// part of it, filed to one patient in an unbroken run, of one document type and date of
// service — what is delivered to the EHR as one PDF.
//
// A document keeps its ID through all its versions. A version never delivered (pending,
// ready) is updated in place when its pages change; one delivered, acknowledged or
// rejected never changes: it becomes superseded, and the next version takes its place —
// replacing it in the EHR (ReplacesVersion) when the EHR holds it.
type PatientDocument struct {
	ID            string `json:"id"`
	Version       int    `json:"version"`
	BatchID       string `json:"batch_id"`
	DocumentID    string `json:"document_id"` // the scan
	Part          int    `json:"part"`
	MRN           string `json:"mrn"`
	DocType       string `json:"doc_type"`        // "" unknown
	DateOfService string `json:"date_of_service"` // YYYY-MM-DD, "" unknown
	Pages         []int  `json:"pages"`
	State         string `json:"state"`
	Reason        string `json:"reason,omitempty"` // rejected: the EHR's reason
	// ReplacesVersion is the version of the same ID this one replaces in the EHR; 0 for
	// an original.
	ReplacesVersion int `json:"replaces_version,omitempty"`
	// Of a superseded version: why (no PHI); whether it was wrong, not just out of date;
	// whether no version replaces it, so the EHR's copy is to be withdrawn.
	SupersededReason string     `json:"superseded_reason,omitempty"`
	EnteredInError   bool       `json:"entered_in_error,omitempty"`
	Withdraw         bool       `json:"withdraw,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	SupersededAt     *time.Time `json:"superseded_at,omitempty"`
}

// LogValue names the document by id, version and state: its MRN is PHI.
func (d PatientDocument) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", d.ID), slog.Int("version", d.Version), slog.String("state", d.State))
}

// inEHR reports whether the EHR holds this version: delivered or acknowledged.
func (d PatientDocument) inEHR() bool { return d.State == PDDelivered || d.State == PDAcknowledged }

// unsent reports whether the version may be changed in place: never sent.
func (d PatientDocument) unsent() bool { return d.State == PDPending || d.State == PDReady }

const patientDocumentColumns = `pd.id::text, pd.version, pd.batch_id::text, pd.document_id::text, pd.part, pd.mrn, pd.doc_type,
	coalesce(to_char(pd.date_of_service, 'YYYY-MM-DD'), ''), pd.state, pd.reason, coalesce(pd.replaces_version, 0),
	pd.superseded_reason, pd.entered_in_error, pd.withdraw, pd.created_at, pd.updated_at, pd.superseded_at,
	coalesce((SELECT array_agg(pp.page_no ORDER BY pp.page_no) FROM patient_document_pages pp
	          WHERE pp.id = pd.id AND pp.version = pd.version), '{}')`

func scanPatientDocument(r pgx.Row) (PatientDocument, error) {
	var d PatientDocument
	err := r.Scan(&d.ID, &d.Version, &d.BatchID, &d.DocumentID, &d.Part, &d.MRN, &d.DocType, &d.DateOfService,
		&d.State, &d.Reason, &d.ReplacesVersion, &d.SupersededReason, &d.EnteredInError, &d.Withdraw,
		&d.CreatedAt, &d.UpdatedAt, &d.SupersededAt, &d.Pages)
	return d, err
}

// pdPage is what grouping reads of a page.
type pdPage struct {
	No        int
	Status    chartscan.PageStatus
	MRN       string
	DocType   string
	DOS       string
	Separator bool // a separator sheet: the pages after it are the scan's next part
}

// pdGroup is a patient document as the pages say it should be now.
type pdGroup struct {
	Part    int
	MRN     string
	DocType string
	DOS     string
	Pages   []int
	Pending bool
}

// groupPages cuts a scan's pages, in order, into patient documents: runs of pages filed
// (auto or confirmed) to one patient within one part of the scan, cut where the document
// type or the date of service changes (a page that names neither continues the run). A
// cover or separator sheet, a page of another patient, a page in review, unmatched or
// still being read ends a run; blank and failed pages belong to no document and end
// none. A document is pending while any page of its part is in review or being read, or
// the scan is not filed yet (scanDone false): that page may yet be the patient's.
func groupPages(pages []pdPage, scanDone bool) []pdGroup {
	var out []pdGroup
	part, open := 1, -1
	unsettled := map[int]bool{}
	for _, p := range pages {
		switch {
		case p.Separator:
			part, open = part+1, -1
			continue
		case p.Status == chartscan.StatusBlank || p.Status == chartscan.StatusFailed:
			continue
		case p.Status == chartscan.StatusReview || p.Status == chartscan.StatusPending:
			unsettled[part], open = true, -1
			continue
		case (p.Status == chartscan.StatusAuto || p.Status == chartscan.StatusConfirmed) && p.MRN != "":
		default: // unmatched, a cover sheet
			open = -1
			continue
		}
		if open >= 0 {
			g := &out[open]
			if g.MRN == p.MRN && agrees(g.DocType, p.DocType) && agrees(g.DOS, p.DOS) {
				g.Pages = append(g.Pages, p.No)
				g.DocType, g.DOS = cmp.Or(g.DocType, p.DocType), cmp.Or(g.DOS, p.DOS)
				continue
			}
		}
		out = append(out, pdGroup{Part: part, MRN: p.MRN, DocType: p.DocType, DOS: p.DOS, Pages: []int{p.No}})
		open = len(out) - 1
	}
	for i := range out {
		out[i].Pending = !scanDone || unsettled[out[i].Part]
	}
	return out
}

// agrees reports whether a page's value (document type, date of service) fits a run's:
// either is unknown, or they are the same.
func agrees(run, page string) bool { return run == "" || page == "" || run == page }

func (g pdGroup) state() string {
	if g.Pending {
		return PDPending
	}
	return PDReady
}

// sameContent reports whether a stored version holds exactly what g says.
func (g pdGroup) sameContent(d PatientDocument) bool {
	return g.Part == d.Part && g.MRN == d.MRN && g.DocType == d.DocType && g.DOS == d.DateOfService && slices.Equal(g.Pages, d.Pages)
}

// pdOp is one change a refresh makes to a scan's patient documents.
type pdOp struct {
	kind pdOpKind
	old  PatientDocument // the stored version (all but opCreate)
	new  PatientDocument // the content to store (opUpdate, opSupersede, opCreate)
	// For opSupersede and opWithdraw of a version the EHR holds, and for the
	// predecessor of an opUpdate or opRemove (pred): why the EHR's copy changes.
	change pdChange
	pred   *PatientDocument // the superseded version an unsent replacement replaces
}

type pdOpKind int

const (
	opState     pdOpKind = iota + 1 // the same content, pending ↔ ready
	opUpdate                        // an unsent version's content changed: updated in place
	opSupersede                     // a sent version's content changed: superseded, the next version added
	opCreate                        // a new document
	opRemove                        // an unsent version no page is left for: deleted
	opWithdraw                      // a sent version no page is left for: superseded, to be withdrawn
	opRestore                       // an unsent replacement back to what it replaces: deleted, that version live again
)

// pdChange is why a version the EHR holds is replaced or withdrawn.
type pdChange struct {
	reason         string
	enteredInError bool
}

// pageNow is a page's filing now, to tell a page moved to another of the patient's
// documents from one taken away from the patient.
type pageNow struct {
	status chartscan.PageStatus
	mrn    string
}

// describeChange says what changed from the version old to the content g (nil: no
// version left), and whether old was wrong rather than out of date: filed to another
// patient (not by an EMPI merge, which only renames the patient), or holding a page that
// is not filed to the patient any more (another patient's, back in review, unmatched).
func describeChange(old PatientDocument, g *pdGroup, now map[int]pageNow, survivor map[string]string) pdChange {
	var c pdChange
	var why []string
	mrn := old.MRN
	if s, ok := survivor[old.MRN]; ok {
		mrn = s
	}
	if g != nil && g.MRN != old.MRN {
		if g.MRN == mrn {
			why = append(why, "patients merged in the EMPI")
		} else {
			why = append(why, "filed to another patient")
			c.enteredInError = true
		}
	}
	var kept []int
	if g != nil {
		kept = g.Pages
	}
	moved, taken := 0, 0
	for _, p := range old.Pages {
		if slices.Contains(kept, p) {
			continue
		}
		if n := now[p]; (n.status == chartscan.StatusAuto || n.status == chartscan.StatusConfirmed) && n.mrn == mrn {
			moved++
		} else {
			taken++
		}
	}
	if taken > 0 {
		why = append(why, "pages no longer filed to the patient")
		c.enteredInError = true
	}
	if moved > 0 {
		why = append(why, "pages moved to another of the patient's documents")
	}
	if g != nil {
		if slices.ContainsFunc(g.Pages, func(p int) bool { return !slices.Contains(old.Pages, p) }) {
			why = append(why, "pages added")
		}
		if g.DocType != old.DocType {
			why = append(why, "document type changed")
		}
		if g.DOS != old.DateOfService {
			why = append(why, "date of service changed")
		}
	}
	c.reason = strings.Join(why, "; ")
	return c
}

// planPatientDocuments compares a scan's stored patient documents (every version) with
// the groups its pages make now and returns the changes that bring them in line. A group
// that a live version already holds exactly changes nothing (but pending ↔ ready);
// otherwise each group is paired with a live version it shares pages with, the most
// alike first (the same patient, then the same type and date, then most pages). An
// unsent version is updated in place; a sent one (delivered, acknowledged, rejected) is
// superseded by its next version, which replaces it in the EHR when the EHR holds it. A
// group that pairs with none is a new document (newID names it); a live version left
// over is deleted if unsent and withdrawn (superseded, to be cancelled) if the EHR holds
// it. An unsent replacement whose pages come back to just what the version it replaces
// holds is deleted, and that version is what the EHR holds again.
func planPatientDocuments(stored []PatientDocument, groups []pdGroup, now map[int]pageNow, survivor map[string]string, newID func() string) []pdOp {
	var live []PatientDocument
	byKey := map[[2]any]*PatientDocument{}
	for i := range stored {
		byKey[[2]any{stored[i].ID, stored[i].Version}] = &stored[i]
		if stored[i].State != PDSuperseded {
			live = append(live, stored[i])
		}
	}
	pairedLive := make([]bool, len(live))
	pairedGroup := make([]int, len(groups)) // index into live +1; 0 none
	var ops []pdOp
	for gi, g := range groups {
		for li, d := range live {
			if !pairedLive[li] && g.sameContent(d) {
				pairedLive[li], pairedGroup[gi] = true, li+1
				if d.unsent() && d.State != g.state() {
					n := d
					n.State = g.state()
					ops = append(ops, pdOp{kind: opState, old: d, new: n})
				}
				break
			}
		}
	}
	// Each group pairs with the live version most like it: the same patient (or the
	// survivor of a merge of theirs) first, then the same type and date of service, then
	// the most pages shared; ties go to the earlier pages.
	type pair struct{ g, l, patient, kind, overlap int }
	var pairs []pair
	for gi, g := range groups {
		if pairedGroup[gi] != 0 {
			continue
		}
		for li, d := range live {
			if pairedLive[li] {
				continue
			}
			n := 0
			for _, p := range g.Pages {
				if slices.Contains(d.Pages, p) {
					n++
				}
			}
			if n > 0 {
				p := pair{g: gi, l: li, overlap: n}
				if g.MRN == d.MRN || g.MRN == survivor[d.MRN] {
					p.patient = 1
				}
				if g.DocType == d.DocType && g.DOS == d.DateOfService {
					p.kind = 1
				}
				pairs = append(pairs, p)
			}
		}
	}
	slices.SortStableFunc(pairs, func(a, b pair) int {
		return cmp.Or(cmp.Compare(b.patient, a.patient), cmp.Compare(b.kind, a.kind), cmp.Compare(b.overlap, a.overlap),
			cmp.Compare(groups[a.g].Pages[0], groups[b.g].Pages[0]),
			cmp.Compare(live[a.l].Version, live[b.l].Version))
	})
	predOf := func(d PatientDocument) *PatientDocument {
		if d.ReplacesVersion == 0 {
			return nil
		}
		return byKey[[2]any{d.ID, d.ReplacesVersion}]
	}
	content := func(d PatientDocument, g pdGroup) PatientDocument {
		d.Part, d.MRN, d.DocType, d.DateOfService, d.Pages, d.State = g.Part, g.MRN, g.DocType, g.DOS, g.Pages, g.state()
		return d
	}
	for _, p := range pairs {
		if pairedLive[p.l] || pairedGroup[p.g] != 0 {
			continue
		}
		pairedLive[p.l], pairedGroup[p.g] = true, p.l+1
		d, g := live[p.l], groups[p.g]
		if d.unsent() {
			op := pdOp{kind: opUpdate, old: d, new: content(d, g)}
			if pred := predOf(d); pred != nil {
				op.pred, op.change = pred, describeChange(*pred, &g, now, survivor)
				if g.sameContent(*pred) {
					// Back to what the EHR holds: the replacement was never sent, so the
					// version it was to replace stands again.
					op.kind = opRestore
				}
			}
			ops = append(ops, op)
			continue
		}
		n := content(PatientDocument{ID: d.ID, Version: d.Version + 1, BatchID: d.BatchID, DocumentID: d.DocumentID}, g)
		if d.inEHR() {
			n.ReplacesVersion = d.Version
		}
		ops = append(ops, pdOp{kind: opSupersede, old: d, new: n, change: describeChange(d, &g, now, survivor)})
	}
	for gi, g := range groups {
		if pairedGroup[gi] == 0 {
			ops = append(ops, pdOp{kind: opCreate, new: PatientDocument{ID: newID(), Version: 1, Part: g.Part, MRN: g.MRN,
				DocType: g.DocType, DateOfService: g.DOS, Pages: g.Pages, State: g.state()}})
		}
	}
	for li, d := range live {
		if pairedLive[li] {
			continue
		}
		if d.unsent() {
			op := pdOp{kind: opRemove, old: d}
			if pred := predOf(d); pred != nil {
				op.pred, op.change = pred, describeChange(*pred, nil, now, survivor)
			}
			ops = append(ops, op)
			continue
		}
		ops = append(ops, pdOp{kind: opWithdraw, old: d, change: describeChange(d, nil, now, survivor)})
	}
	return ops
}

// refreshPatientDocuments brings a scan's patient documents in line with its pages,
// inside tx, after anything that changed a page's filing: a filing saved, a reviewer's
// decision, a quality check that found a misfile, a re-run, an EMPI merge. It locks the
// scan's row as an update of it does, so refreshes of one scan run one after another;
// the transactions that change pages hold that lock already (the filing-generation
// trigger, the filing's own update), always taken after the pages they change. It locks
// no page: a decision holding one page must never wait for a filing holding the others.
func refreshPatientDocuments(ctx context.Context, tx pgx.Tx, documentID string) error {
	var batchID, status string
	err := tx.QueryRow(ctx, `SELECT batch_id::text, status FROM documents WHERE id::text = $1 FOR NO KEY UPDATE`, documentID).Scan(&batchID, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("patient documents of %s: %w", documentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	rows, err := tx.Query(ctx, `
		SELECT page_no, status, coalesce(mrn, ''), coalesce(doc_type, ''), coalesce(to_char(date_of_service, 'YYYY-MM-DD'), ''), separator
		FROM pages WHERE document_id::text = $1 ORDER BY page_no`, documentID)
	if err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	pages, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pdPage, error) {
		var p pdPage
		err := r.Scan(&p.No, &p.Status, &p.MRN, &p.DocType, &p.DOS, &p.Separator)
		return p, err
	})
	if err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	now := make(map[int]pageNow, len(pages))
	for _, p := range pages {
		now[p.No] = pageNow{p.Status, p.MRN}
	}
	rows, err = tx.Query(ctx, `SELECT `+patientDocumentColumns+` FROM patient_documents pd
		WHERE pd.document_id::text = $1 ORDER BY pd.id, pd.version`, documentID)
	if err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PatientDocument, error) { return scanPatientDocument(r) })
	if err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	survivor := map[string]string{}
	if len(stored) > 0 {
		var mrns []string
		for _, d := range stored {
			mrns = append(mrns, d.MRN)
		}
		rows, err := tx.Query(ctx, `SELECT alias_mrn, mrn FROM patient_aliases WHERE alias_mrn = ANY($1)`, mrns)
		if err != nil {
			return fmt.Errorf("patient documents: %w", err)
		}
		var a, m string
		if _, err := pgx.ForEachRow(rows, []any{&a, &m}, func() error { survivor[a] = m; return nil }); err != nil {
			return fmt.Errorf("patient documents: %w", err)
		}
	}
	ops := planPatientDocuments(stored, groupPages(pages, status == string(chartscan.DocDone)), now, survivor, uuid.NewString)
	if len(ops) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	insert := func(d PatientDocument) {
		var replaces *int
		if d.ReplacesVersion > 0 {
			replaces = &d.ReplacesVersion
		}
		b.Queue(`INSERT INTO patient_documents (id, version, batch_id, document_id, part, mrn, doc_type, date_of_service, state, replaces_version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, '')::date, $9, $10)`,
			d.ID, d.Version, batchID, documentID, d.Part, d.MRN, d.DocType, d.DateOfService, d.State, replaces)
		b.Queue(`INSERT INTO patient_document_pages (id, version, document_id, page_no) SELECT $1, $2, $3, unnest($4::int[])`,
			d.ID, d.Version, documentID, d.Pages)
	}
	supersede := func(d PatientDocument, c pdChange, withdraw bool) {
		b.Queue(`UPDATE patient_documents SET state = 'superseded', superseded_at = coalesce(superseded_at, now()), updated_at = now(),
			superseded_reason = $3, entered_in_error = $4, withdraw = $5 WHERE id = $1 AND version = $2`,
			d.ID, d.Version, c.reason, c.enteredInError, withdraw)
	}
	for _, op := range ops {
		switch op.kind {
		case opState:
			b.Queue(`UPDATE patient_documents SET state = $3, updated_at = now() WHERE id = $1 AND version = $2`, op.old.ID, op.old.Version, op.new.State)
		case opUpdate:
			d := op.new
			b.Queue(`UPDATE patient_documents SET part = $3, mrn = $4, doc_type = $5, date_of_service = NULLIF($6, '')::date, state = $7, updated_at = now()
				WHERE id = $1 AND version = $2`, d.ID, d.Version, d.Part, d.MRN, d.DocType, d.DateOfService, d.State)
			b.Queue(`DELETE FROM patient_document_pages WHERE id = $1 AND version = $2`, d.ID, d.Version)
			b.Queue(`INSERT INTO patient_document_pages (id, version, document_id, page_no) SELECT $1, $2, $3, unnest($4::int[])`,
				d.ID, d.Version, documentID, d.Pages)
			if op.pred != nil {
				supersede(*op.pred, op.change, false)
			}
		case opSupersede:
			// What the EHR holds is replaced by the next version; a rejected version is
			// only followed by it (the EHR never took it).
			supersede(op.old, op.change, false)
			insert(op.new)
		case opCreate:
			insert(op.new)
		case opRemove:
			b.Queue(`DELETE FROM patient_documents WHERE id = $1 AND version = $2`, op.old.ID, op.old.Version)
			if op.pred != nil {
				supersede(*op.pred, op.change, true)
			}
		case opWithdraw:
			supersede(op.old, op.change, op.old.inEHR())
		case opRestore:
			b.Queue(`DELETE FROM patient_documents WHERE id = $1 AND version = $2`, op.old.ID, op.old.Version)
			b.Queue(`UPDATE patient_documents SET state = CASE WHEN acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'delivered' END,
				superseded_at = NULL, superseded_reason = '', entered_in_error = false, withdraw = false, updated_at = now()
				WHERE id = $1 AND version = $2`, op.pred.ID, op.pred.Version)
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("patient documents: %w", err)
	}
	return nil
}

// RefreshPatientDocuments brings the patient documents of a scan in line with its pages
// in a transaction of its own. Every change of a filing does this itself; this is for
// scans filed before patient documents existed, and for checking.
func (db *DB) RefreshPatientDocuments(ctx context.Context, documentID string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := refreshPatientDocuments(ctx, tx, documentID); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// RefreshBatchPatientDocuments refreshes the patient documents of every scan a batch
// uploaded (see RefreshPatientDocuments), each in its own transaction. An unknown batch
// is ErrNotFound.
func (db *DB) RefreshBatchPatientDocuments(ctx context.Context, batchID string) error {
	ids, err := db.batchDocumentIDs(ctx, batchID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := db.RefreshPatientDocuments(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) batchDocumentIDs(ctx context.Context, batchID string) ([]string, error) {
	var ok bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM batches WHERE id::text = $1)`, batchID).Scan(&ok); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	if !ok {
		return nil, chartscan.Errorf(chartscan.ENotFound, "no batch %s", batchID)
	}
	rows, err := db.pool.Query(ctx, `SELECT bd.document_id::text FROM batch_documents bd JOIN documents d ON d.id = bd.document_id
		WHERE bd.batch_id::text = $1 ORDER BY d.created_at, d.id`, batchID)
	if err != nil {
		return nil, fmt.Errorf("batch documents: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// PatientDocuments returns every version of the patient documents of the scans a batch
// uploaded, in scan order, then by first page, then by version.
func (db *DB) PatientDocuments(ctx context.Context, batchID string) ([]PatientDocument, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+patientDocumentColumns+`
		FROM patient_documents pd JOIN documents d ON d.id = pd.document_id
		WHERE pd.document_id IN (SELECT document_id FROM batch_documents WHERE batch_id::text = $1)
		ORDER BY d.created_at, d.id, pd.part,
		         (SELECT min(page_no) FROM patient_document_pages pp WHERE pp.id = pd.id AND pp.version = pd.version) NULLS LAST,
		         pd.id, pd.version`, batchID)
	if err != nil {
		return nil, fmt.Errorf("patient documents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PatientDocument, error) { return scanPatientDocument(r) })
	if err != nil {
		return nil, fmt.Errorf("patient documents: %w", err)
	}
	return out, nil
}

// PatientDocument returns one version of a patient document; a missing one is
// ErrNotFound.
func (db *DB) PatientDocument(ctx context.Context, id string, version int) (PatientDocument, error) {
	d, err := scanPatientDocument(db.pool.QueryRow(ctx, `SELECT `+patientDocumentColumns+`
		FROM patient_documents pd WHERE pd.id::text = $1 AND pd.version = $2`, id, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("patient document %s v%d: %w", id, version, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("patient document: %w", err)
	}
	return d, nil
}

// pdTransitions are the delivery states a version may move between: a ready version is
// delivered or rejected, a delivered one acknowledged or rejected, a rejected one made
// ready again (a retry).
var pdTransitions = map[string][]string{
	PDReady:     {PDDelivered, PDRejected},
	PDDelivered: {PDAcknowledged, PDRejected},
	PDRejected:  {PDReady},
}

// SetPatientDocumentState moves a version along its delivery (see pdTransitions);
// reason is the EHR's reason for a rejection (no PHI). A move the version's state does
// not allow — it changed since it was read, or was superseded — changes nothing and is
// an EConflict.
func (db *DB) SetPatientDocumentState(ctx context.Context, id string, version int, state, reason string) error {
	var from []string
	for f, tos := range pdTransitions {
		if slices.Contains(tos, state) {
			from = append(from, f)
		}
	}
	if len(from) == 0 {
		return chartscan.Errorf(chartscan.EInvalid, "a patient document cannot be set %s", state)
	}
	if state != PDRejected {
		reason = ""
	}
	tag, err := db.pool.Exec(ctx, `
		UPDATE patient_documents SET state = $3, reason = $4, updated_at = now(),
		       delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
		       acknowledged_at = CASE WHEN $3 = 'acknowledged' THEN now() ELSE acknowledged_at END
		WHERE id::text = $1 AND version = $2 AND state = ANY($5)`, id, version, state, reason, from)
	if err != nil {
		return fmt.Errorf("patient document state: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return chartscan.Errorf(chartscan.EConflict, "patient document %s v%d is not in a state that can become %s; nothing was changed", id, version, state)
	}
	return nil
}

// DocumentPatient returns the EMPI record of a patient document's patient (following a
// merge's alias) and the system that issued the MRN (” unnamed).
func (db *DB) DocumentPatient(ctx context.Context, mrn string) (chartscan.Patient, string, error) {
	var p chartscan.Patient
	var system string
	err := db.pool.QueryRow(ctx, `
		SELECT p.mrn, p.family, p.given, `+birthDateSQL+`, p.sex, p.mrn_system
		FROM patients p WHERE p.mrn = coalesce((SELECT mrn FROM patient_aliases WHERE alias_mrn = $1), $1)`, mrn).Scan(
		&p.MRN, &p.Family, &p.Given, &p.BirthDate, &p.Sex, &system)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, "", fmt.Errorf("patient: %w", ErrNotFound)
	}
	if err != nil {
		return p, "", fmt.Errorf("patient: %w", err)
	}
	return p, system, nil
}
