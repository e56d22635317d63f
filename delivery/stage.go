// Package delivery is the document:deliver stage (issue 14, item 5): it sends each
// ready patient document version to the EHR — a FHIR transaction Bundle to
// CHARTSCAN_FHIR_URL, an HL7 MDM message over MLLP to CHARTSCAN_HL7_ADDR, or both —,
// withdraws superseded versions no other replaces, and records what each target
// answered.
//
// Never twice: a task claims its version by locking the version's row and its scan's
// (storage.ClaimDelivery) for the whole send, so two workers never send one version at
// once and a reviewer's correction waits for the send, then supersedes what was sent. A
// worker that dies mid-send loses its lock with its connection; the version is still
// due and is sent again, with the same document number (FHIR masterIdentifier, created
// conditionally on it; HL7 TXA-12) and the same MSH-10, which the EHR's duplicate check
// keys on. A target that took a version is never sent it again.
//
// Retried: an EHR that does not answer, or answers that it cannot take anything now, is
// tried again, 2 s doubling to CHARTSCAN_DELIVER_RETRY_MAX, for as long as it takes; a
// refusal (HL7 AE/AR, FHIR 4xx) makes the version rejected with the receiver's reason,
// which a clerk sees and can retry.
//
// Audited: workers hold no audit key. Every send, acknowledgement, rejection and failed
// attempt is written to delivery_events in the transaction that records it, and serve
// (or the CLI) appends them to the signed audit log (storage.AuditDeliveryEvents).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/assemble"
	"github.com/chartscan/chartscan/deliver"
	"github.com/chartscan/chartscan/storage"
)

// TypeDeliver is the task type of the stage, Queue its queue.
const (
	TypeDeliver = "document:deliver"
	Queue       = "deliver"
)

// NewTask returns the task of a delivery job. Its id is the job's (version, operation,
// round): enqueued again while it is queued, retried or kept after it ran, it is the
// same task.
func NewTask(job storage.DeliveryJob) (*asynq.Task, error) {
	b, err := jsonMarshal(job)
	if err != nil {
		return nil, err
	}
	return asynq.NewTask(TypeDeliver, b, asynq.TaskID("deliver:"+job.String()), asynq.Queue(Queue),
		asynq.MaxRetry(1<<20), asynq.Timeout(5*time.Minute), asynq.Retention(24*time.Hour)), nil
}

// Stage delivers patient documents.
type Stage struct {
	DB      *storage.DB
	Builder *assemble.Builder
	FHIR    *FHIRClient // nil: no FHIR target
	HL7     *HL7Sender  // nil: no HL7 target
	Log     *slog.Logger
	// LockWait is how long a task waits for a version another worker is sending (10 s
	// when 0) before it is tried again later.
	LockWait time.Duration
	// RetryMax caps the backoff between attempts (5 minutes when 0).
	RetryMax time.Duration
}

// Targets names the configured targets, in the order they are sent to.
func (s *Stage) Targets() []string {
	var t []string
	if s.FHIR != nil {
		t = append(t, storage.TargetFHIR)
	}
	if s.HL7 != nil {
		t = append(t, storage.TargetHL7)
	}
	return t
}

// Register adds the stage's handler to mux.
func (s *Stage) Register(mux *asynq.ServeMux) { mux.HandleFunc(TypeDeliver, s.ProcessTask) }

// RetryDelay is the wait before a task's next attempt: 2 s doubling up to RetryMax,
// less up to a fifth at random so tasks an outage held back come back spread out.
func (s *Stage) RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	limit := s.RetryMax
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	d := min(time.Duration(1)<<min(n+1, 20)*time.Second, limit)
	return d - rand.N(d/5+1)
}

// ProcessTask runs one delivery job.
func (s *Stage) ProcessTask(ctx context.Context, t *asynq.Task) error {
	job, err := jsonUnmarshal(t.Payload())
	if err != nil {
		return fmt.Errorf("%s payload: %v: %w", TypeDeliver, err, asynq.SkipRetry)
	}
	err = s.Deliver(ctx, job)
	if err != nil && IsUnavailable(err) {
		s.Log.Info("delivery waits for the EHR", "job", job.String(), "error", err)
	}
	return err
}

// Deliver runs one delivery job: claims the version, sends it to each target that has
// not taken it yet, records each answer and finishes. Not due (sent already, superseded
// meanwhile): nothing. A target unavailable: the others are still sent to, and the
// error (Unavailable) has the job tried again.
func (s *Stage) Deliver(ctx context.Context, job storage.DeliveryJob) error {
	targets := s.Targets()
	if len(targets) == 0 {
		return fmt.Errorf("no delivery target is configured: %w", asynq.SkipRetry)
	}
	lockWait := s.LockWait
	if lockWait <= 0 {
		lockWait = 10 * time.Second
	}
	c, err := s.DB.ClaimDelivery(ctx, job, lockWait)
	if errors.Is(err, storage.ErrNotDue) {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" { // lock_not_available: another worker is sending it
		return &Unavailable{What: "the document is being sent by another worker"}
	}
	if err != nil {
		return err
	}
	defer c.Rollback(ctx)
	var waiting []string
	unavailable := func(err error) error {
		if IsUnavailable(err) {
			waiting = append(waiting, err.Error())
			return nil
		}
		return err
	}
	if job.Op == storage.OpWithdraw {
		err = s.withdraw(ctx, c, targets, unavailable)
	} else {
		err = s.send(ctx, c, targets, unavailable)
	}
	if err != nil {
		c.Rollback(ctx)
		if code := chartscan.ErrorCode(err); code == chartscan.EInvalid || code == chartscan.ENotFound {
			// The document cannot be built (its patient left the EMPI, a setting
			// missing): rejected by chartscan itself, with why, for the clerk.
			return s.refuse(ctx, job, chartscan.ErrorMessage(err))
		}
		_ = s.DB.DeliveryFailed(context.WithoutCancel(ctx), job, "chartscan could not build the message")
		return err
	}
	state, err := c.Finish(ctx, targets, strings.Join(waiting, "; "))
	if err != nil {
		return err
	}
	s.Log.Info("delivery", "job", job.String(), "state", state, "waiting", len(waiting))
	if len(waiting) > 0 {
		return &Unavailable{What: strings.Join(waiting, "; ")}
	}
	return nil
}

// send delivers a version to every target that has not taken it: FHIR, the transaction
// Bundle (which, for a replacement, marks the replaced DocumentReference superseded or
// entered-in-error); HL7, for a replacement of a version entered in error a T11
// cancelling it first, then the T02 (T10 for another replacement).
func (s *Stage) send(ctx context.Context, c *storage.DeliveryClaim, targets []string, unavailable func(error) error) error {
	d, err := s.Builder.Document(ctx, c.Doc)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if _, done := c.Done[t]; done {
			continue
		}
		switch t {
		case storage.TargetFHIR:
			fd, err := s.Builder.FHIR(d)
			if err != nil {
				return err
			}
			bundle, err := deliver.FHIRBundle(fd, true)
			if err != nil {
				return err
			}
			r, err := s.FHIR.Transaction(ctx, bundle)
			if err != nil {
				if err := unavailable(err); err != nil {
					return err
				}
				continue
			}
			if err := c.Record(ctx, c.Doc.Version, storage.TargetDelivery{Target: t, Kind: storage.DeliverySend, State: r.State,
				AckCode: r.Code, Reason: r.Reason}, map[string]any{"replaces": c.Doc.ReplacesVersion}); err != nil {
				return err
			}
		case storage.TargetHL7:
			if err := s.sendHL7(ctx, c, d); err != nil {
				if err := unavailable(err); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Stage) sendHL7(ctx context.Context, c *storage.DeliveryClaim, d deliver.Document) error {
	ss, err := s.HL7.Open(ctx)
	if err != nil {
		return err
	}
	defer ss.Close()
	if old := c.Replaced; old != nil && old.EnteredInError {
		if _, done := c.Done["cancel:"+storage.TargetHL7]; !done {
			msg, err := s.Builder.Cancel(ctx, *old)
			if err != nil {
				return err
			}
			ctrl := assemble.ControlID(assemble.Number(old.ID, old.Version), "cancel")
			r, err := ss.Send(ctx, msg, ctrl)
			if err != nil {
				return err
			}
			if err := c.Record(ctx, old.Version, storage.TargetDelivery{Target: storage.TargetHL7, Kind: storage.DeliveryCancel,
				State: r.State, AckCode: r.Code, ControlID: ctrl, Reason: r.Reason}, map[string]any{"event": deliver.EventCancel}); err != nil {
				return err
			}
		}
	}
	msg, err := assemble.MDM(d)
	if err != nil {
		return err
	}
	ctrl := assemble.ControlID(d.Number(), "mdm")
	r, err := ss.Send(ctx, msg, ctrl)
	if err != nil {
		return err
	}
	event := deliver.EventOriginal
	if d.Replaces.ID != "" && !d.Replaces.EnteredInError {
		event = deliver.EventReplacement
	}
	return c.Record(ctx, c.Doc.Version, storage.TargetDelivery{Target: storage.TargetHL7, Kind: storage.DeliverySend,
		State: r.State, AckCode: r.Code, ControlID: ctrl, Reason: r.Reason}, map[string]any{"event": event, "replaces": c.Doc.ReplacesVersion})
}

// withdraw tells every target that a superseded version no other replaces is
// withdrawn: FHIR, its DocumentReference entered-in-error (superseded when it was only
// out of date); HL7, a T11 cancel.
func (s *Stage) withdraw(ctx context.Context, c *storage.DeliveryClaim, targets []string, unavailable func(error) error) error {
	pd := c.Doc
	for _, t := range targets {
		if _, done := c.Done[t]; done {
			continue
		}
		var r Result
		var err error
		ctrl := ""
		switch t {
		case storage.TargetFHIR:
			var bundle []byte
			bundle, err = deliver.FHIRWithdraw(deliver.Replaced{ID: pd.ID, Version: pd.Version, EnteredInError: pd.EnteredInError}, s.Builder.Facility)
			if err != nil {
				return err
			}
			r, err = s.FHIR.Transaction(ctx, bundle)
		case storage.TargetHL7:
			var msg []byte
			if msg, err = s.Builder.Cancel(ctx, pd); err != nil {
				return err
			}
			ctrl = assemble.ControlID(assemble.Number(pd.ID, pd.Version), "cancel")
			var ss *Session
			if ss, err = s.HL7.Open(ctx); err == nil {
				r, err = ss.Send(ctx, msg, ctrl)
				ss.Close()
			}
		}
		if err != nil {
			if err := unavailable(err); err != nil {
				return err
			}
			continue
		}
		if err := c.Record(ctx, pd.Version, storage.TargetDelivery{Target: t, Kind: storage.DeliveryCancel, State: r.State,
			AckCode: r.Code, ControlID: ctrl, Reason: r.Reason}, map[string]any{"withdraw": true}); err != nil {
			return err
		}
	}
	return nil
}

// refuse makes a version chartscan cannot build rejected, with why (a user-safe
// message, no PHI), for the clerk to retry once it is fixed.
func (s *Stage) refuse(ctx context.Context, job storage.DeliveryJob, why string) error {
	c, err := s.DB.ClaimDelivery(ctx, job, 10*time.Second)
	if errors.Is(err, storage.ErrNotDue) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Rollback(ctx)
	if job.Op == storage.OpSend {
		for _, t := range s.Targets() {
			if _, done := c.Done[t]; done {
				continue
			}
			if err := c.Record(ctx, job.Version, storage.TargetDelivery{Target: t, Kind: storage.DeliverySend, State: storage.TargetRejected,
				Reason: "not sent: " + why}, map[string]any{"by": "chartscan"}); err != nil {
				return err
			}
		}
	}
	if _, err := c.Finish(ctx, s.Targets(), "not sent: "+why); err != nil {
		return err
	}
	s.Log.Warn("delivery refused by chartscan: the document cannot be built", "job", job.String())
	return nil
}

// Dispatch enqueues every delivery due, now and every interval until ctx ends: versions
// that became ready (a filing, a reviewer's decision), rejected ones a clerk retried,
// withdrawals. A job already queued is the same task (its id), so every worker may run
// this.
func (s *Stage) Dispatch(ctx context.Context, q *asynq.Client, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := s.EnqueueDue(ctx, q); err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("delivery dispatch", "error", err)
			}
		} else if n > 0 {
			s.Log.Debug("deliveries queued", "jobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EnqueueDue enqueues the deliveries due and returns how many were new.
func (s *Stage) EnqueueDue(ctx context.Context, q *asynq.Client) (int, error) {
	jobs, err := s.DB.DeliveriesDue(ctx, s.Targets(), 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		task, err := NewTask(j)
		if err != nil {
			return n, err
		}
		_, err = q.EnqueueContext(ctx, task)
		switch {
		case err == nil:
			n++
		case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		default:
			return n, err
		}
	}
	return n, nil
}
