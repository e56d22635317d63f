package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/mllp"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

func newADTCmd() *cobra.Command {
	var addr, certFile, keyFile, clientCA string
	cmd := &cobra.Command{
		Use:   "adt [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]",
		Short: "Listen for HL7 v2 ADT messages over MLLP and apply each to the EMPI as it comes, acknowledging it",
		Long: `adt listens for HL7 v2 messages over MLLP (TCP; TLS with --tls-cert and --tls-key) as an
interface engine sends them, applies each ADT message to the EMPI in the order it comes,
and answers it: AA once its change is committed, AE with the segment, field and reason
for a message it cannot apply (a PID without an MRN, a record of an MRN merged into
another patient, an unmerge, which a person must do), AR for one that is not well formed
or not ADT. Registrations and updates (A01, A04, A05, A08, A28, A31) upsert the patient;
A18, A30, A34, A36, A39, A40 and A47 merge; other events are acknowledged and change
nothing. A message sent again with the same control id and content is acknowledged
without being applied again. After a message that adds or changes a patient, or merges
one, the pages in review or unmatched that patient could resolve are filed again.
Acknowledgements and logs never hold patient data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := newApp(ctx, needDB)
			if err != nil {
				return err
			}
			defer a.close()
			if addr == "" {
				addr = a.cfg.ADTAddr
			}
			if err := checkHostPort(addr); err != nil {
				return chartscan.Errorf(chartscan.EInvalid, "--addr %s: %v", addr, err)
			}
			tlsConfig, err := adtTLS(certFile, keyFile, clientCA)
			if err != nil {
				return err
			}
			refiler, err := worker.New(worker.Config{Store: a.db, Model: a.cfg.Model, Pages: a.cfg.Pages, Log: a.log})
			if err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return chartscan.Errorf(chartscan.EInvalid, "cannot listen on %s: %v", addr, errorsCause(err))
			}
			l := newADTListener(a.db, refiler, a.log, indexer.HL7Options{MRNSystem: a.cfg.MRNSystem})
			refileDone := make(chan struct{})
			go func() {
				defer close(refileDone)
				l.refileLoop(ctx)
			}()
			scheme := "MLLP"
			if tlsConfig != nil {
				scheme = "MLLP over TLS"
			}
			// The address goes to stdout first: with --addr 127.0.0.1:0 it is how a caller
			// learns the port.
			fmt.Fprintf(cmd.OutOrStdout(), "listening for HL7 v2 over %s on %s\n", scheme, ln.Addr())
			a.log.Info("adt listening", "addr", ln.Addr().String(), "tls", tlsConfig != nil)
			srv := &mllp.Server{Handler: l, TLSConfig: tlsConfig, OnConn: l.onConn,
				TooLarge: func() []byte {
					return indexer.HL7Ack(nil, indexer.AckReject, &indexer.HL7Error{Code: 207, Reason: "message too large", Reject: true}, l.ackID(), time.Now())
				}}
			err = srv.Serve(ctx, ln)
			<-refileDone
			a.log.Info("adt stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port to listen on (default CHARTSCAN_ADT_ADDR, 127.0.0.1:2575)")
	cmd.Flags().StringVar(&certFile, "tls-cert", "", "PEM certificate (chain) to speak MLLP over TLS")
	cmd.Flags().StringVar(&keyFile, "tls-key", "", "PEM private key of --tls-cert")
	cmd.Flags().StringVar(&clientCA, "tls-client-ca", "", "PEM CA certificates: require a sender's certificate signed by one")
	return cmd
}

// adtTLS builds the listener's TLS configuration; nil without a certificate.
func adtTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		if clientCA != "" {
			return nil, chartscan.Errorf(chartscan.EInvalid, "--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, chartscan.Errorf(chartscan.EInvalid, "--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, chartscan.Errorf(chartscan.EInvalid, "--tls-cert/--tls-key: %v", errorsCause(err))
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "--tls-client-ca: %v", errorsCause(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, chartscan.Errorf(chartscan.EInvalid, "--tls-client-ca: no PEM certificate in %s", clientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// hl7Applier applies HL7 v2 messages to the EMPI: the one way for the live listener and
// `records import` of an HL7 file alike.
type hl7Applier struct {
	db    *storage.DB
	actor string
}

// apply applies one message's events in one transaction. A refusal is an
// *indexer.HL7Error naming the segment and field; any other error is internal.
func (h hl7Applier) apply(ctx context.Context, m *indexer.HL7Message) (storage.ChangeResult, error) {
	changes := make([]storage.EMPIChange, len(m.Events))
	for i, e := range m.Events {
		changes[i] = storage.EMPIChange{Kind: storage.ChangeKind(e.Kind), Patient: e.Patient, MergedMRN: e.MergedMRN,
			Demographics: e.Demographics, MRNSystem: e.MRNSystem, IDs: patientIDs(e.IDs)}
	}
	var key *storage.MessageKey
	if m.ControlID != "" {
		key = &storage.MessageKey{Sender: m.SendingApp + "^" + m.SendingFacility, ControlID: m.ControlID, Event: m.Event, Digest: m.Digest}
	}
	res, err := h.db.ApplyEMPIChanges(ctx, key, changes, h.actor)
	var ce *storage.ChangeError
	if !errors.As(err, &ce) {
		return res, err
	}
	e := m.Events[ce.Index]
	mrg := 0 // which MRG segment: merges carry one each, in order
	for _, x := range m.Events[:ce.Index+1] {
		if x.Kind != indexer.ADTUpsert {
			mrg++
		}
	}
	switch {
	case errors.Is(err, storage.ErrMergedMRN):
		return res, &indexer.HL7Error{Segment: "PID", Seq: e.PID, Field: 3, Code: 204, Reason: "MRN merged into another patient; send changes for the survivor"}
	case errors.Is(err, storage.ErrMergeConflict):
		return res, &indexer.HL7Error{Segment: "MRG", Seq: mrg, Field: 1, Code: 205, Reason: "merged MRN already merged into another patient"}
	case errors.Is(err, storage.ErrSystemConflict):
		return res, &indexer.HL7Error{Segment: "PID", Seq: e.PID, Field: 3, Code: 205, Reason: "MRN belongs to a patient of another assigning authority"}
	case errors.Is(err, storage.ErrUnmerge):
		return res, &indexer.HL7Error{Segment: "MSH", Seq: 1, Field: 9, Code: 201, Reason: "unmerge needs a person to undo the merge; refusal audited"}
	}
	return res, err
}

// patientIDs converts a reader's identifiers for storage.
func patientIDs(ids []indexer.SystemID) []storage.PatientID {
	out := make([]storage.PatientID, len(ids))
	for i, id := range ids {
		out[i] = storage.PatientID(id)
	}
	return out
}

// hl7Refusal reports whether err is a refusal of the message (user-safe), not a fault.
func hl7Refusal(err error) (*indexer.HL7Error, bool) {
	var he *indexer.HL7Error
	ok := errors.As(err, &he)
	return he, ok
}

// safeError describes an internal error for a log without patient data: a database
// error's message and detail can quote values, so only its SQLSTATE is kept.
func safeError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return "database error SQLSTATE " + pe.Code
	}
	if chartscan.ErrorCode(err) != chartscan.EInternal {
		return chartscan.ErrorMessage(err)
	}
	return err.Error()
}

// adtListener is the MLLP handler of `chartscan adt`.
type adtListener struct {
	apply hl7Applier
	db    *storage.DB
	opts  indexer.HL7Options
	log   *slog.Logger
	w     *worker.Worker

	seq   atomic.Uint64 // numbers the acknowledgements
	start string        // the process's start, in their control ids

	mu      sync.Mutex
	conns   map[uint64]*adtConnStats
	touched chan []string // MRNs whose patients a message made, changed or merged into
}

// adtConnStats counts one connection's messages by acknowledgement.
type adtConnStats struct {
	applied, duplicates, refused, rejected, failed int
}

func newADTListener(db *storage.DB, w *worker.Worker, log *slog.Logger, opts indexer.HL7Options) *adtListener {
	return &adtListener{apply: hl7Applier{db: db, actor: "system:adt"}, db: db, opts: opts, log: log, w: w,
		start: strconv.FormatInt(time.Now().Unix(), 36), conns: map[uint64]*adtConnStats{},
		touched: make(chan []string, 4096)}
}

// ackID returns a control id for an acknowledgement, unique to this process.
func (l *adtListener) ackID() string {
	return "CS" + l.start + "-" + strconv.FormatUint(l.seq.Add(1), 10)
}

func (l *adtListener) stats(id uint64) *adtConnStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.conns[id]
	if st == nil {
		st = &adtConnStats{}
		l.conns[id] = st
	}
	return st
}

// ServeMLLP applies one message and returns its acknowledgement.
func (l *adtListener) ServeMLLP(ctx context.Context, conn *mllp.ConnInfo, raw []byte) []byte {
	st := l.stats(conn.ID)
	m, err := indexer.ParseHL7(raw, l.opts)
	if err == nil && m.Type != "ADT" {
		err = &indexer.HL7Error{Segment: "MSH", Seq: 1, Field: 9, Code: 200, Reason: "message type not supported: this listener takes ADT", Reject: true}
	}
	log := l.log.With("conn", conn.ID)
	if m != nil {
		log = log.With("control_id", m.ControlID, "event", m.Event)
	}
	if err != nil {
		code := indexer.AckError
		if he, _ := hl7Refusal(err); he != nil && he.Reject {
			code = indexer.AckReject
			st.rejected++
		} else {
			st.refused++
		}
		log.Warn("hl7 message refused", "ack", code, "reason", err.Error())
		return indexer.HL7Ack(m, code, err, l.ackID(), time.Now())
	}
	res, err := l.apply.apply(ctx, m)
	if he, ok := hl7Refusal(err); ok {
		st.refused++
		log.Warn("hl7 message refused", "ack", indexer.AckError, "reason", he.Error())
		return indexer.HL7Ack(m, indexer.AckError, he, l.ackID(), time.Now())
	}
	if err != nil {
		st.failed++
		log.Error("hl7 message not applied", "error", safeError(err))
		return indexer.HL7Ack(m, indexer.AckError,
			&indexer.HL7Error{Code: 207, Reason: "internal error: the message was not applied; send it again"}, l.ackID(), time.Now())
	}
	if res.Duplicate {
		st.duplicates++
	} else {
		st.applied++
	}
	log.Info("hl7 message applied", "duplicate", res.Duplicate, "inserted", res.Inserted, "updated", res.Updated,
		"merges", res.Merges, "pages_moved", res.PagesMoved)
	if len(res.Touched) > 0 {
		select {
		case l.touched <- res.Touched:
		default:
			log.Warn("refile queue full: run chartscan refile for the batches waiting for these patients")
		}
	}
	if res.IDConflicts > 0 {
		// Applied; the identifiers another patient holds stay with it, and the sender is
		// told so in a warning it can route to a person.
		log.Warn("hl7 identifiers held by another patient, not linked", "identifiers", res.IDConflicts)
		return indexer.HL7Ack(m, indexer.AckAccept, &indexer.HL7Error{Segment: "PID", Seq: 1, Field: 3, Code: 205,
			Reason: fmt.Sprintf("applied; %d identifiers of other systems belong to another patient: not linked", res.IDConflicts), Warning: true}, l.ackID(), time.Now())
	}
	return indexer.HL7Ack(m, indexer.AckAccept, nil, l.ackID(), time.Now())
}

// refileLoop files again, until ctx is done, the documents the patients of committed
// messages could resolve. Messages are acknowledged when committed; re-filing follows
// here, in the background, one document at a time, each once however many of the
// messages waiting name it.
func (l *adtListener) refileLoop(ctx context.Context) {
	for {
		var mrns []string
		select {
		case <-ctx.Done():
			return
		case m := <-l.touched:
			mrns = append(mrns, m...)
		}
	more:
		for {
			select {
			case m := <-l.touched:
				mrns = append(mrns, m...)
			default:
				break more
			}
		}
		docs, err := l.db.DocumentsToRefile(ctx, mrns)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("documents to refile", "error", safeError(err))
			}
			continue
		}
		for _, d := range docs {
			counts, err := l.w.Refile(ctx, d, false)
			switch {
			case chartscan.ErrorCode(err) == chartscan.EConflict || chartscan.ErrorCode(err) == chartscan.EInvalid:
				// Still being read (its match task files it) or failed: nothing to re-file.
				l.log.Debug("document not re-filed", "document_id", d, "reason", chartscan.ErrorMessage(err))
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				l.log.Error("refile after an EMPI change", "document_id", d, "error", safeError(err))
			default:
				l.log.Info("refiled after an EMPI change", "document_id", d, "auto", counts[chartscan.StatusAuto],
					"review", counts[chartscan.StatusReview], "unmatched", counts[chartscan.StatusUnmatched])
			}
		}
	}
}

// onConn logs each connection and audits what it carried when it closes.
func (l *adtListener) onConn(info *mllp.ConnInfo, open bool, messages int, err error) {
	log := l.log.With("conn", info.ID, "remote", info.RemoteAddr.String())
	if open {
		log.Info("hl7 sender connected", "tls", info.TLS != nil)
		return
	}
	l.mu.Lock()
	st := l.conns[info.ID]
	delete(l.conns, info.ID)
	l.mu.Unlock()
	if st == nil {
		st = &adtConnStats{}
	}
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	log.Info("hl7 sender disconnected", "messages", messages, "applied", st.applied, "duplicates", st.duplicates,
		"refused", st.refused, "rejected", st.rejected, "failed", st.failed, "reason", reason)
	if messages == 0 {
		return
	}
	outcome := "ok"
	if st.refused+st.rejected+st.failed > 0 {
		outcome = "partial"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.db.Audit(ctx, storage.AuditEntry{Actor: "system:adt", Action: "empi.adt", Object: "mllp:" + info.RemoteAddr.String(),
		Outcome: outcome, Detail: map[string]any{"messages": messages, "applied": st.applied, "duplicates": st.duplicates,
			"refused": st.refused, "rejected": st.rejected, "failed": st.failed}}); err != nil {
		log.Error("audit of an hl7 connection", "error", safeError(err))
	}
}
