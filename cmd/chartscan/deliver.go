package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/assemble"
	"github.com/chartscan/chartscan/deliver"
	"github.com/chartscan/chartscan/delivery"
	"github.com/chartscan/chartscan/storage"
)

// deliverSettings are the EHR's (issue 14, item 5): where the document:deliver stage
// sends patient documents, and how it proves who it is.
type deliverSettings struct {
	FHIRURL          string
	FHIRToken        string
	FHIRClientID     string
	FHIRClientSecret string
	FHIRTokenURL     string
	FHIRScope        string
	FHIRCA           string
	HL7Addr          string
	HL7TLS           bool
	HL7CA            string
	RetryMax         time.Duration
	Concurrency      int
}

func init() {
	settings = append(settings,
		setting{"CHARTSCAN_FHIR_URL", "", "FHIR R4 server's base URL the workers deliver patient documents to as transaction Bundles (https://…); empty: no FHIR delivery", func(c *config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return fmt.Errorf("want the server's base URL, https://host/path")
			}
			c.Deliver.FHIRURL = v
			return nil
		}},
		setting{"CHARTSCAN_FHIR_TOKEN", "", "bearer token sent to CHARTSCAN_FHIR_URL (or use the client credentials below)", func(c *config, v string) error { c.Deliver.FHIRToken = strings.TrimSpace(v); return nil }},
		setting{"CHARTSCAN_FHIR_CLIENT_ID", "", "OAuth 2.0 client id for the client credentials grant at CHARTSCAN_FHIR_TOKEN_URL", func(c *config, v string) error { c.Deliver.FHIRClientID = strings.TrimSpace(v); return nil }},
		setting{"CHARTSCAN_FHIR_CLIENT_SECRET", "", "its client secret (sent by HTTP Basic to the token endpoint only)", func(c *config, v string) error { c.Deliver.FHIRClientSecret = v; return nil }},
		setting{"CHARTSCAN_FHIR_TOKEN_URL", "", "OAuth 2.0 token endpoint that gives the workers bearer tokens for the FHIR server (https://…)", func(c *config, v string) error {
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("want https://host/path")
			}
			c.Deliver.FHIRTokenURL = v
			return nil
		}},
		setting{"CHARTSCAN_FHIR_SCOPE", "system/DocumentReference.write system/Binary.write", "scope asked for with the client credentials grant", func(c *config, v string) error { c.Deliver.FHIRScope = strings.TrimSpace(v); return nil }},
		setting{"CHARTSCAN_FHIR_CA", "", "PEM file of the CA that signed the FHIR server's (and token endpoint's) certificate; trusted for them in place of the system's CAs", fileSetting(func(c *config) *string { return &c.Deliver.FHIRCA })},
		setting{"CHARTSCAN_HL7_ADDR", "", "interface engine the workers send HL7 MDM^T02/T10/T11 to over MLLP, host:port; empty: no HL7 delivery", func(c *config, v string) error {
			if err := checkHostPort(v); err != nil {
				return err
			}
			c.Deliver.HL7Addr = v
			return nil
		}},
		setting{"CHARTSCAN_HL7_TLS", "false", "MLLP over TLS to CHARTSCAN_HL7_ADDR (TLS 1.2+, the engine's certificate verified)", func(c *config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			c.Deliver.HL7TLS = b
			return nil
		}},
		setting{"CHARTSCAN_HL7_CA", "", "PEM file of the CA that signed the interface engine's certificate (CHARTSCAN_HL7_TLS=true only)", fileSetting(func(c *config) *string { return &c.Deliver.HL7CA })},
		setting{"CHARTSCAN_DELIVER_RETRY_MAX", "5m", "longest wait between attempts to deliver to an EHR that is down (waits start at 2 s and double)", durationSetting(time.Second, time.Hour, func(c *config) *time.Duration { return &c.Deliver.RetryMax })},
		setting{"CHARTSCAN_DELIVER_CONCURRENCY", "2", "deliveries a worker makes at once (the deliver queue has a server of its own)", intSetting(1, func(c *config) *int { return &c.Deliver.Concurrency })},
	)
	for _, s := range []string{"CHARTSCAN_FHIR_TOKEN", "CHARTSCAN_FHIR_CLIENT_SECRET"} {
		secretSettings[s] = true
	}
}

// checkDeliver refuses delivery settings that contradict each other.
func (c config) checkDeliver() error {
	d := c.Deliver
	cc := d.FHIRClientID != "" || d.FHIRClientSecret != "" || d.FHIRTokenURL != ""
	switch {
	case cc && (d.FHIRClientID == "" || d.FHIRClientSecret == "" || d.FHIRTokenURL == ""):
		return fmt.Errorf("CHARTSCAN_FHIR_CLIENT_ID, CHARTSCAN_FHIR_CLIENT_SECRET and CHARTSCAN_FHIR_TOKEN_URL: set all three for the client credentials grant, or none")
	case cc && d.FHIRToken != "":
		return fmt.Errorf("CHARTSCAN_FHIR_TOKEN and the client credentials are both set: choose one")
	case d.HL7CA != "" && !d.HL7TLS:
		return fmt.Errorf("CHARTSCAN_HL7_CA is set but CHARTSCAN_HL7_TLS is false: MLLP would be in cleartext; set CHARTSCAN_HL7_TLS=true")
	}
	return nil
}

// deliveryStage builds the document:deliver stage from the settings; nil when no target
// is configured.
func (a *app) deliveryStage() (*delivery.Stage, error) {
	d := a.cfg.Deliver
	if d.FHIRURL == "" && d.HL7Addr == "" {
		return nil, nil
	}
	if err := a.cfg.checkDeliver(); err != nil {
		return nil, err
	}
	s := &delivery.Stage{DB: a.db, Log: a.log.With("component", "deliver"), RetryMax: d.RetryMax,
		Builder: &assemble.Builder{Store: a.db, Objects: a.objects, MRNSystemURI: a.cfg.MRNSystemURI,
			Facility: deliver.Facility{Name: a.cfg.Facility, MRNSystem: cmp.Or(a.cfg.MRNSystem, a.cfg.MRNSystemURI)}}}
	if d.FHIRURL != "" {
		if _, ok := assemble.FHIRSystem(cmp.Or(a.cfg.MRNSystemURI, a.cfg.MRNSystem)); !ok {
			return nil, chartscan.Errorf(chartscan.EInvalid, "FHIR delivery names the MRN's system by a URI: set CHARTSCAN_MRN_SYSTEM_URI (urn:oid:… or https://…)")
		}
		hc := &http.Client{Timeout: time.Minute}
		if d.FHIRCA != "" {
			pool, err := readCAFile("CHARTSCAN_FHIR_CA", d.FHIRCA)
			if err != nil {
				return nil, err
			}
			hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		}
		s.FHIR = &delivery.FHIRClient{Base: d.FHIRURL, HTTP: hc}
		switch {
		case d.FHIRTokenURL != "":
			cc := &delivery.ClientCredentials{TokenURL: d.FHIRTokenURL, ClientID: d.FHIRClientID, ClientSecret: d.FHIRClientSecret, Scope: d.FHIRScope, HTTP: hc}
			s.FHIR.Token, s.FHIR.Invalidate = cc.Token, cc.Invalidate
		case d.FHIRToken != "":
			s.FHIR.Token = delivery.StaticToken(d.FHIRToken)
		}
	}
	if d.HL7Addr != "" {
		if a.cfg.Facility == "" {
			return nil, chartscan.Errorf(chartscan.EInvalid, "HL7 delivery names the sending facility in MSH-4: set CHARTSCAN_FACILITY")
		}
		s.HL7 = &delivery.HL7Sender{Addr: d.HL7Addr}
		if d.HL7TLS {
			host, _, _ := strings.Cut(d.HL7Addr, ":")
			s.HL7.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			if d.HL7CA != "" {
				pool, err := readCAFile("CHARTSCAN_HL7_CA", d.HL7CA)
				if err != nil {
					return nil, err
				}
				s.HL7.TLS.RootCAs = pool
			}
		}
	}
	return s, nil
}

// runDelivery runs the deliver queue in a worker: an Asynq server of its own (its own
// concurrency and backoff, so an EHR that is down never holds up OCR) and the dispatcher
// that queues what is due. It returns at once; both stop with ctx.
func runDelivery(ctx context.Context, a *app) (stop func(), err error) {
	s, err := a.deliveryStage()
	if err != nil || s == nil {
		return func() {}, err
	}
	srv := asynq.NewServerFromRedisClient(a.redis, asynq.Config{
		Concurrency:    a.cfg.Deliver.Concurrency,
		Queues:         map[string]int{delivery.Queue: 1},
		Logger:         asynqLogger{a.log},
		LogLevel:       asynq.WarnLevel,
		RetryDelayFunc: s.RetryDelay,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			if !delivery.IsUnavailable(err) {
				id, _ := asynq.GetTaskID(ctx)
				a.log.Warn("delivery failed", "task_id", id, "error", err)
			}
		}),
		ShutdownTimeout: 30 * time.Second,
	})
	mux := asynq.NewServeMux()
	s.Register(mux)
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start delivery: %w", err)
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Dispatch(dctx, a.queue, 2*time.Second) }()
	a.log.Info("delivery started", "targets", s.Targets(), "concurrency", a.cfg.Deliver.Concurrency)
	return func() { cancel(); <-done; srv.Shutdown() }, nil
}

// auditDeliveries appends the workers' delivery events to the audit log every few
// seconds until ctx ends (serve holds the audit key; workers do not).
func (a *app) auditDeliveries(ctx context.Context) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		for {
			n, err := a.db.AuditDeliveryEvents(ctx, 500)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("audit of delivery events", "error", err)
				}
				break
			}
			if n < 500 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func newDeliverCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "deliver",
		Short: "Delivery of patient documents to the EHR: status of a batch's, retry a rejected one",
	}
	var batch string
	var wait time.Duration
	var asJSON bool
	status := &cobra.Command{
		Use:   "status --batch ID [--wait 5m] [--json]",
		Short: "Each patient document of a batch with its delivery: state, what each target answered, a rejection's reason",
		Long: `Prints every version of the batch's patient documents: its document number (the FHIR
masterIdentifier and HL7 TXA-12), type, date of service, pages, state (pending, ready,
delivered, acknowledged, rejected, superseded) and what each target answered. First it
appends the workers' delivery events to the audit log. With --wait it waits, at most
that long, until no document is ready or waiting for a target, and exits 3 if some
still are.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch == "" {
				return chartscan.Errorf(chartscan.EInvalid, "deliver status needs --batch ID")
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				return deliverStatus(cmd, a, batch, wait, asJSON)
			})
		},
	}
	status.Flags().StringVar(&batch, "batch", "", "the batch")
	status.Flags().DurationVar(&wait, "wait", 0, "wait this long at most for the deliveries due")
	status.Flags().BoolVar(&asJSON, "json", false, "one JSON object per version")
	retry := &cobra.Command{
		Use:   "retry DOCUMENT-NUMBER",
		Short: "Deliver a rejected version again (<id>-v<version>, as status prints it) once its cause is fixed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, v, ok := strings.Cut(args[0], "-v")
			n, err := strconv.Atoi(v)
			for ok && strings.Contains(v, "-v") { // ids hold no "-v"; be exact anyway
				id2, v2, _ := strings.Cut(v, "-v")
				id, v = id+"-v"+id2, v2
				n, err = strconv.Atoi(v)
			}
			if !ok || err != nil || n < 1 {
				return chartscan.Errorf(chartscan.EInvalid, "want a document number <id>-v<version>")
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				e := auditCLI("deliver.retry", "", nil)
				d, err := a.db.RetryDelivery(cmd.Context(), id, n, e.Actor)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s-v%d is %s again: a worker delivers it\n", d.ID, d.Version, d.State)
				return nil
			})
		},
	}
	c.AddCommand(status, retry)
	return c
}

// deliveryDue reports whether a version still waits for a delivery: ready, delivered
// but a target has yet to take it, or superseded and still to be withdrawn.
func deliveryDue(d storage.DeliveryStatus) bool {
	switch d.State {
	case storage.PDReady:
		return true
	case storage.PDDelivered:
		return d.Waiting != ""
	case storage.PDSuperseded:
		return d.Withdraw && d.DeliveredAt != nil && d.RetiredAt == nil
	}
	return false
}

func deliverStatus(cmd *cobra.Command, a *app, batch string, wait time.Duration, asJSON bool) error {
	ctx := cmd.Context()
	if err := a.db.RefreshBatchPatientDocuments(ctx, batch); err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	var docs []storage.DeliveryStatus
	for {
		if _, err := a.db.AuditDeliveryEvents(ctx, 5000); err != nil {
			return err
		}
		var err error
		if docs, err = a.db.BatchDeliveries(ctx, batch); err != nil {
			return err
		}
		if !slices.ContainsFunc(docs, deliveryDue) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err := a.db.Audit(ctx, auditCLI("deliver.status", "batch:"+batch, map[string]any{"documents": len(docs)})); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		for _, d := range docs {
			d.MRN = "" // the report names documents, not patients
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
	} else {
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "DOCUMENT NUMBER\tTYPE\tDATE OF SERVICE\tPAGES\tSTATE\tTARGETS\tNOTE")
		counts := map[string]int{}
		for _, d := range docs {
			counts[d.State]++
			var targets []string
			for _, t := range d.Targets {
				s := strings.ToUpper(t.Target) + " " + t.Kind + " " + t.State
				if t.AckCode != "" {
					s += " (" + t.AckCode + ")"
				}
				targets = append(targets, s)
			}
			note := d.Reason
			switch {
			case d.State == storage.PDSuperseded && d.Withdraw:
				note = "withdrawn: " + d.SupersededReason
			case d.State == storage.PDSuperseded:
				note = "replaced: " + d.SupersededReason
			case d.Waiting != "" && note == "":
				note = "waiting: " + d.Waiting
			}
			if d.ReplacesVersion > 0 {
				note = strings.TrimSpace(fmt.Sprintf("replaces v%d %s", d.ReplacesVersion, note))
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Number(), cmp.Or(d.DocType, "unknown"), cmp.Or(d.DateOfService, "-"),
				pageList(d.Pages), d.State, cmp.Or(strings.Join(targets, ", "), "-"), note)
		}
		w.Flush()
		var parts []string
		for _, s := range storage.PatientDocumentStates {
			if counts[s] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
			}
		}
		fmt.Fprintf(out, "%d versions: %s\n", len(docs), strings.Join(parts, ", "))
	}
	if slices.ContainsFunc(docs, deliveryDue) && wait > 0 {
		fmt.Fprintln(os.Stderr, "chartscan: some documents are still due for delivery")
		return exitError{3}
	}
	return nil
}

func pageList(p []int) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
