package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan"
)

// Delivery targets and kinds (patient_document_deliveries, migration 00019).
const (
	TargetFHIR = "fhir"
	TargetHL7  = "hl7"

	DeliverySend   = "send"   // the version itself: a FHIR transaction, an MDM T02/T10
	DeliveryCancel = "cancel" // withdrawing the version: HL7 T11, FHIR status change

	TargetAccepted     = "accepted"     // the target took it (HL7 CA)
	TargetAcknowledged = "acknowledged" // and applied it (HL7 AA, FHIR 2xx)
	TargetRejected     = "rejected"     // refused (HL7 AE/AR/CE/CR, FHIR 4xx)
)

// Delivery operations: what a document:deliver task does with a version.
const (
	OpSend     = "send"     // deliver a ready version (and, for a replacement, retire the one it replaces)
	OpWithdraw = "withdraw" // withdraw a superseded version no other replaces
)

// DeliveryJob names one delivery to make: a version, what to do, and the round (a
// clerk's retry starts the next), which together make the task's id.
type DeliveryJob struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Op      string `json:"op"`
	Round   int    `json:"round"`
}

// String names the job by ids only: "<id>-v<version>:<op>:r<round>".
func (j DeliveryJob) String() string {
	return j.ID + "-v" + strconv.Itoa(j.Version) + ":" + j.Op + ":r" + strconv.Itoa(j.Round)
}

// DeliveriesDue returns the deliveries to make for targets (TargetFHIR, TargetHL7): ready
// versions, delivered versions some target has not taken yet, and superseded versions
// once in the EHR to withdraw that have not been withdrawn. At most limit, oldest first.
func (db *DB) DeliveriesDue(ctx context.Context, targets []string, limit int) ([]DeliveryJob, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `
		SELECT id::text, version, op, round FROM (
			SELECT pd.id, pd.version, 'send' AS op, pd.round, pd.updated_at FROM patient_documents pd
			WHERE pd.state = 'ready'
			   OR pd.state = 'delivered' AND EXISTS (SELECT 1 FROM unnest($1::text[]) t(target) WHERE NOT EXISTS (
			          SELECT 1 FROM patient_document_deliveries d WHERE d.id = pd.id AND d.version = pd.version AND d.target = t.target AND d.kind = 'send'))
			UNION ALL
			SELECT pd.id, pd.version, 'withdraw', pd.round, pd.updated_at FROM patient_documents pd
			WHERE pd.state = 'superseded' AND pd.withdraw AND pd.retired_at IS NULL AND pd.delivered_at IS NOT NULL
		) due ORDER BY updated_at, id, version LIMIT $2`, targets, limit)
	if err != nil {
		return nil, fmt.Errorf("deliveries due: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryJob, error) {
		var j DeliveryJob
		err := r.Scan(&j.ID, &j.Version, &j.Op, &j.Round)
		return j, err
	})
}

// TargetDelivery is what one target did with one version.
type TargetDelivery struct {
	Target    string    `json:"target"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	AckCode   string    `json:"ack_code,omitempty"`
	ControlID string    `json:"control_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// DeliveryClaim is a version claimed for delivery: its scan's row and its own are
// locked until Finish or Rollback, so no other worker sends it, and no filing changes
// it, while it is being sent. (A filing that changes it waits, then sees what was
// sent: a delivered version is superseded, never changed.)
type DeliveryClaim struct {
	tx  pgx.Tx
	Job DeliveryJob
	Doc PatientDocument
	// Replaced is the version Doc replaces in the EHR, for a replacement.
	Replaced *PatientDocument
	// Done is what each target did already: Doc's sends (OpSend) or cancels
	// (OpWithdraw), and the cancels of Replaced ("cancel:" + target) for a replacement.
	Done map[string]TargetDelivery
}

// ErrNotDue is returned by ClaimDelivery for a job whose version is not (or no longer)
// to be delivered: already delivered, superseded, rejected, another round's.
var ErrNotDue = errors.New("not due for delivery")

// ClaimDelivery locks a version for its delivery and checks that it is still due: a
// ready (or partly delivered) version for OpSend, a superseded one to withdraw for
// OpWithdraw, in the job's round. Another worker holding it makes this wait up to
// lockWait, then fail (retry later). Not due: ErrNotDue.
func (db *DB) ClaimDelivery(ctx context.Context, job DeliveryJob, lockWait time.Duration) (*DeliveryClaim, error) {
	var scan string
	err := db.pool.QueryRow(ctx, `SELECT document_id::text FROM patient_documents WHERE id::text = $1 AND version = $2`, job.ID, job.Version).Scan(&scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotDue // an unsent version removed by a re-filing
	}
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, max(lockWait.Milliseconds(), 1))); err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	// The scan's row first, as refreshPatientDocuments takes it, then the version's.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM documents WHERE id::text = $1 FOR NO KEY UPDATE`, scan); err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	c := &DeliveryClaim{tx: tx, Job: job, Done: map[string]TargetDelivery{}}
	var deliveredAt *time.Time
	row := tx.QueryRow(ctx, `SELECT `+patientDocumentColumns+`, pd.round, pd.delivered_at, pd.retired_at IS NOT NULL
		FROM patient_documents pd WHERE pd.id::text = $1 AND pd.version = $2 FOR UPDATE OF pd`, job.ID, job.Version)
	var round int
	var retired bool
	d := &c.Doc
	err = row.Scan(&d.ID, &d.Version, &d.BatchID, &d.DocumentID, &d.Part, &d.MRN, &d.DocType, &d.DateOfService,
		&d.State, &d.Reason, &d.ReplacesVersion, &d.SupersededReason, &d.EnteredInError, &d.Withdraw,
		&d.CreatedAt, &d.UpdatedAt, &d.SupersededAt, &d.Pages, &round, &deliveredAt, &retired)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotDue
	}
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	switch job.Op {
	case OpSend:
		if (d.State != PDReady && d.State != PDDelivered) || round != job.Round {
			return nil, ErrNotDue
		}
	case OpWithdraw:
		if d.State != PDSuperseded || !d.Withdraw || retired || deliveredAt == nil {
			return nil, ErrNotDue
		}
	default:
		return nil, chartscan.Errorf(chartscan.EInvalid, "unknown delivery operation %q", job.Op)
	}
	kind := DeliverySend
	if job.Op == OpWithdraw {
		kind = DeliveryCancel
	}
	if err := c.readDone(ctx, d.ID, d.Version, kind, ""); err != nil {
		return nil, err
	}
	if job.Op == OpSend && d.ReplacesVersion > 0 {
		old, err := scanPatientDocument(tx.QueryRow(ctx, `SELECT `+patientDocumentColumns+` FROM patient_documents pd
			WHERE pd.id::text = $1 AND pd.version = $2`, d.ID, d.ReplacesVersion))
		if err != nil {
			return nil, fmt.Errorf("claim delivery: the replaced version: %w", err)
		}
		c.Replaced = &old
		if err := c.readDone(ctx, old.ID, old.Version, DeliveryCancel, "cancel:"); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

func (c *DeliveryClaim) readDone(ctx context.Context, id string, version int, kind, prefix string) error {
	rows, err := c.tx.Query(ctx, `SELECT target, kind, state, ack_code, control_id, reason, at FROM patient_document_deliveries
		WHERE id::text = $1 AND version = $2 AND kind = $3`, id, version, kind)
	if err != nil {
		return fmt.Errorf("claim delivery: %w", err)
	}
	var t TargetDelivery
	_, err = pgx.ForEachRow(rows, []any{&t.Target, &t.Kind, &t.State, &t.AckCode, &t.ControlID, &t.Reason, &t.At}, func() error {
		c.Done[prefix+t.Target] = t
		return nil
	})
	if err != nil {
		return fmt.Errorf("claim delivery: %w", err)
	}
	return nil
}

// Record keeps what target did with a version (Doc, or the version it replaces for the
// cancel of a replacement) and writes the delivery event the audit log gets.
func (c *DeliveryClaim) Record(ctx context.Context, version int, t TargetDelivery, detail map[string]any) error {
	if _, err := c.tx.Exec(ctx, `
		INSERT INTO patient_document_deliveries (id, version, target, kind, state, ack_code, control_id, reason)
		VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (id, version, target, kind) DO UPDATE SET state = EXCLUDED.state, ack_code = EXCLUDED.ack_code,
			control_id = EXCLUDED.control_id, reason = EXCLUDED.reason, at = now()`,
		c.Doc.ID, version, t.Target, t.Kind, t.State, t.AckCode, t.ControlID, t.Reason); err != nil {
		return fmt.Errorf("record delivery: %w", err)
	}
	key := t.Target
	if version != c.Doc.Version {
		key = "cancel:" + t.Target
	}
	t.At = time.Now()
	c.Done[key] = t
	outcome := "ok"
	if t.State == TargetRejected {
		outcome = "rejected"
	}
	action := "deliver." + t.Kind
	d := map[string]any{"target": t.Target, "state": t.State, "number": c.Doc.ID + "-v" + strconv.Itoa(version)}
	if t.AckCode != "" {
		d["ack_code"] = t.AckCode
	}
	if t.ControlID != "" {
		d["control_id"] = t.ControlID
	}
	if t.Reason != "" {
		d["reason"] = t.Reason
	}
	for k, v := range detail {
		d[k] = v
	}
	return c.event(ctx, version, action, outcome, d)
}

func (c *DeliveryClaim) event(ctx context.Context, version int, action, outcome string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	if _, err := c.tx.Exec(ctx, `INSERT INTO delivery_events (doc_id, version, action, outcome, detail) VALUES ($1::uuid, $2, $3, $4, $5)`,
		c.Doc.ID, version, action, outcome, b); err != nil {
		return fmt.Errorf("delivery event: %w", err)
	}
	return nil
}

// Finish ends the claim: it sets the version's state from what its targets did — every
// target acknowledged: acknowledged; every target took it: delivered; one took it and
// another has yet to: delivered, the rest still due; one rejected it: rejected, with
// the targets' reasons —, marks the replaced version retired once every target took
// the replacement, counts the attempt with why it did not get through (waiting, no
// PHI; "" when it did) and commits. It returns the version's state (OpSend) or whether
// the withdrawal is complete.
func (c *DeliveryClaim) Finish(ctx context.Context, targets []string, waiting string) (string, error) {
	defer c.tx.Rollback(context.WithoutCancel(ctx))
	d := c.Doc
	if c.Job.Op == OpWithdraw {
		all := !slices.ContainsFunc(targets, func(t string) bool { _, ok := c.Done[t]; return !ok })
		if all {
			if _, err := c.tx.Exec(ctx, `UPDATE patient_documents SET retired_at = now(), waiting = '', attempts = attempts + 1, last_attempt_at = now()
				WHERE id::text = $1 AND version = $2`, d.ID, d.Version); err != nil {
				return "", fmt.Errorf("finish delivery: %w", err)
			}
		} else if _, err := c.tx.Exec(ctx, `UPDATE patient_documents SET waiting = $3, attempts = attempts + 1, last_attempt_at = now()
				WHERE id::text = $1 AND version = $2`, d.ID, d.Version, waiting); err != nil {
			return "", fmt.Errorf("finish delivery: %w", err)
		}
		if err := c.tx.Commit(ctx); err != nil {
			return "", fmt.Errorf("finish delivery: %w", err)
		}
		if all {
			return "withdrawn", nil
		}
		return d.State, nil
	}
	var reasons []string
	taken, acked, done := 0, 0, 0
	for _, t := range targets {
		r, ok := c.Done[t]
		if !ok {
			continue
		}
		done++
		switch r.State {
		case TargetRejected:
			reasons = append(reasons, targetName(t)+": "+cmpOr(r.Reason, "refused ("+r.AckCode+")"))
		case TargetAcknowledged:
			acked++
			taken++
		case TargetAccepted:
			taken++
		}
	}
	state := d.State
	reason := ""
	switch {
	case len(reasons) > 0:
		state, reason = PDRejected, strings.Join(reasons, "; ")
	case acked == len(targets):
		state = PDAcknowledged
	case taken > 0:
		state = PDDelivered
	}
	if state == PDRejected || state == PDAcknowledged || taken == len(targets) {
		waiting = ""
	}
	if _, err := c.tx.Exec(ctx, `
		UPDATE patient_documents SET state = $3, reason = $4, waiting = $5, attempts = attempts + 1, last_attempt_at = now(), updated_at = now(),
		       delivered_at = CASE WHEN $3 IN ('delivered', 'acknowledged') THEN coalesce(delivered_at, now()) ELSE delivered_at END,
		       acknowledged_at = CASE WHEN $3 = 'acknowledged' THEN coalesce(acknowledged_at, now()) ELSE acknowledged_at END
		WHERE id::text = $1 AND version = $2`, d.ID, d.Version, state, reason, waiting); err != nil {
		return "", fmt.Errorf("finish delivery: %w", err)
	}
	if c.Replaced != nil && taken == len(targets) {
		if _, err := c.tx.Exec(ctx, `UPDATE patient_documents SET retired_at = coalesce(retired_at, now()) WHERE id::text = $1 AND version = $2`,
			c.Replaced.ID, c.Replaced.Version); err != nil {
			return "", fmt.Errorf("finish delivery: %w", err)
		}
	}
	if state != d.State {
		outcome := "ok"
		if state == PDRejected {
			outcome = "rejected"
		}
		ev := map[string]any{"from": d.State, "to": state, "number": d.ID + "-v" + strconv.Itoa(d.Version)}
		if reason != "" {
			ev["reason"] = reason
		}
		if err := c.event(ctx, d.Version, "deliver.state", outcome, ev); err != nil {
			return "", err
		}
	}
	if err := c.tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("finish delivery: %w", err)
	}
	return state, nil
}

// Rollback gives the claim up: nothing it recorded is kept.
func (c *DeliveryClaim) Rollback(ctx context.Context) { c.tx.Rollback(context.WithoutCancel(ctx)) }

func targetName(t string) string {
	if t == TargetFHIR {
		return "FHIR"
	}
	return "HL7"
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// DeliveryFailed records an attempt that did not get through (the EHR down, the claim
// not had), in a transaction of its own: the version's attempts and why it waits (no
// PHI), and a delivery event.
func (db *DB) DeliveryFailed(ctx context.Context, job DeliveryJob, waiting string) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `UPDATE patient_documents SET attempts = attempts + 1, last_attempt_at = now(), waiting = $3
		WHERE id::text = $1 AND version = $2`, job.ID, job.Version, waiting)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	detail, _ := json.Marshal(map[string]any{"op": job.Op, "waiting": waiting, "number": job.ID + "-v" + strconv.Itoa(job.Version)})
	if _, err := tx.Exec(ctx, `INSERT INTO delivery_events (doc_id, version, action, outcome, detail) VALUES ($1::uuid, $2, 'deliver.attempt', 'failed', $3)`,
		job.ID, job.Version, detail); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// RetryDelivery makes a rejected version ready again, in the next round, for a clerk
// who had the cause fixed: the targets that rejected it are sent it again, those that
// took it are not. Audited (actor names the clerk). A version that is not rejected is
// an EConflict; a missing one ErrNotFound.
func (db *DB) RetryDelivery(ctx context.Context, id string, version int, actor string) (PatientDocument, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return PatientDocument{}, err
	}
	defer tx.Rollback(ctx)
	var state string
	err = tx.QueryRow(ctx, `SELECT state FROM patient_documents WHERE id::text = $1 AND version = $2 FOR UPDATE`, id, version).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return PatientDocument{}, fmt.Errorf("patient document %s v%d: %w", id, version, ErrNotFound)
	}
	if err != nil {
		return PatientDocument{}, fmt.Errorf("retry delivery: %w", err)
	}
	object := "patient_document:" + id + "/v" + strconv.Itoa(version)
	if state != PDRejected {
		return PatientDocument{}, chartscan.Errorf(chartscan.EConflict, "patient document %s v%d is %s, not rejected: nothing to retry", id, version, state)
	}
	// Back to ready, or to delivered when a target holds it already.
	if _, err := tx.Exec(ctx, `DELETE FROM patient_document_deliveries WHERE id::text = $1 AND version = $2 AND state = 'rejected'`, id, version); err != nil {
		return PatientDocument{}, fmt.Errorf("retry delivery: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE patient_documents SET state = CASE WHEN delivered_at IS NULL THEN 'ready' ELSE 'delivered' END,
		reason = '', waiting = '', attempts = 0, round = round + 1, updated_at = now() WHERE id::text = $1 AND version = $2`, id, version); err != nil {
		return PatientDocument{}, fmt.Errorf("retry delivery: %w", err)
	}
	if err := appendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "deliver.retry", Object: object, Outcome: "ok"}); err != nil {
		return PatientDocument{}, err
	}
	d, err := scanPatientDocument(tx.QueryRow(ctx, `SELECT `+patientDocumentColumns+` FROM patient_documents pd WHERE pd.id::text = $1 AND pd.version = $2`, id, version))
	if err != nil {
		return d, fmt.Errorf("retry delivery: %w", err)
	}
	return d, tx.Commit(ctx)
}

// AuditDeliveryEvents appends the delivery events the workers wrote to the audit log,
// oldest first, signed with this DB's audit key, and marks them audited; at most limit
// in one transaction. It returns how many it appended. Serve runs it every few seconds;
// the CLI's delivery commands before they report.
func (db *DB) AuditDeliveryEvents(ctx context.Context, limit int) (int, error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT seq, at, doc_id::text, version, action, outcome, detail FROM delivery_events
		WHERE audited_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return 0, fmt.Errorf("delivery events: %w", err)
	}
	type event struct {
		seq             int64
		at              time.Time
		id              string
		version         int
		action, outcome string
		detail          map[string]any
	}
	var evs []event
	var e event
	_, err = pgx.ForEachRow(rows, []any{&e.seq, &e.at, &e.id, &e.version, &e.action, &e.outcome, &e.detail}, func() error {
		evs = append(evs, e)
		e = event{}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delivery events: %w", err)
	}
	if len(evs) == 0 {
		return 0, nil
	}
	seqs := make([]int64, len(evs))
	for i, e := range evs {
		if e.detail == nil {
			e.detail = map[string]any{}
		}
		e.detail["event"] = e.seq
		e.detail["event_at"] = e.at.UTC().Format(time.RFC3339Nano)
		if err := appendAudit(ctx, tx, AuditEntry{Actor: "system:deliver", Action: e.action,
			Object: "patient_document:" + e.id + "/v" + strconv.Itoa(e.version), Outcome: e.outcome, Detail: e.detail}); err != nil {
			return 0, err
		}
		seqs[i] = e.seq
	}
	if _, err := tx.Exec(ctx, `UPDATE delivery_events SET audited_at = now() WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, fmt.Errorf("delivery events: %w", err)
	}
	return len(evs), tx.Commit(ctx)
}

// DeliveryStatus is a patient document version with its delivery: attempts, why it
// waits, what each target did.
type DeliveryStatus struct {
	PatientDocument
	Attempts       int              `json:"attempts"`
	Waiting        string           `json:"waiting,omitempty"`
	DeliveredAt    *time.Time       `json:"delivered_at,omitempty"`
	AcknowledgedAt *time.Time       `json:"acknowledged_at,omitempty"`
	RetiredAt      *time.Time       `json:"retired_at,omitempty"`
	Targets        []TargetDelivery `json:"targets,omitempty"`
}

// Number is the version's document number (the FHIR masterIdentifier, TXA-12).
func (d DeliveryStatus) Number() string { return d.ID + "-v" + strconv.Itoa(d.Version) }

// BatchDeliveries returns every version of a batch's patient documents (as
// PatientDocuments orders them) with its delivery.
func (db *DB) BatchDeliveries(ctx context.Context, batchID string) ([]DeliveryStatus, error) {
	docs, err := db.PatientDocuments(ctx, batchID)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `
		SELECT pd.id::text, pd.version, pd.attempts, pd.waiting, pd.delivered_at, pd.acknowledged_at, pd.retired_at,
		       coalesce((SELECT json_agg(json_build_object('target', d.target, 'kind', d.kind, 'state', d.state, 'ack_code', d.ack_code,
		                 'control_id', d.control_id, 'reason', d.reason, 'at', d.at) ORDER BY d.kind DESC, d.target)
		                 FROM patient_document_deliveries d WHERE d.id = pd.id AND d.version = pd.version), '[]')
		FROM patient_documents pd WHERE pd.document_id IN (SELECT document_id FROM batch_documents WHERE batch_id::text = $1)`, batchID)
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	type key struct {
		id string
		v  int
	}
	extra := map[key]DeliveryStatus{}
	var s DeliveryStatus
	var k key
	_, err = pgx.ForEachRow(rows, []any{&k.id, &k.v, &s.Attempts, &s.Waiting, &s.DeliveredAt, &s.AcknowledgedAt, &s.RetiredAt, &s.Targets}, func() error {
		extra[k] = s
		s = DeliveryStatus{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	out := make([]DeliveryStatus, len(docs))
	for i, d := range docs {
		out[i] = extra[key{d.ID, d.Version}]
		out[i].PatientDocument = d
	}
	return out, nil
}

// PatientDocumentBatch returns the batch a patient document's scan was uploaded in.
func (db *DB) PatientDocumentBatch(ctx context.Context, id string, version int) (string, error) {
	var b string
	err := db.pool.QueryRow(ctx, `SELECT batch_id::text FROM patient_documents WHERE id::text = $1 AND version = $2`, id, version).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("patient document %s v%d: %w", id, version, ErrNotFound)
	}
	return b, err
}
