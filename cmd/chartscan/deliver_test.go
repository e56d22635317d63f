package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chartscan/chartscan/storage"
)

// The delivery stage's tests (issue 14, item 5): the worker delivers the sample charts'
// patient documents to real peers started here — a FHIR server (@medplum/fhir-router
// over its in-memory repository, every resource validated by @medplum/core's validator
// before it is taken: fhir-peer.mjs) and an MLLP receiver (@medplum/hl7's server and
// @medplum/core's parser: mdm-peer.mjs) — and the tests read back what they received.

const testMRNSystem = "urn:oid:2.16.840.1.113883.19.5" // HL7's example OID

// nodePeer is a peer script running in node, on a port that stays the same when it is
// killed and started again.
type nodePeer struct {
	t      *testing.T
	script string
	args   []string
	port   int
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  []string
}

func startNodePeer(t *testing.T, script string, args ...string) *nodePeer {
	t.Helper()
	p := &nodePeer{t: t, script: script, args: args}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *nodePeer) start() {
	p.t.Helper()
	args := append([]string{p.script, "--port", fmt.Sprint(p.port)}, p.args...)
	cmd := exec.Command("node", args...)
	cmd.Dir = hl7Peer
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe() // mdm-peer.mjs stops when its stdin ends
	out, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 16<<20)
	ready := make(chan int, 1)
	go func() {
		first := true
		for sc.Scan() {
			if first {
				var m struct{ Port int }
				json.Unmarshal(sc.Bytes(), &m)
				ready <- m.Port
				first = false
				continue
			}
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		if first {
			close(ready)
		}
	}()
	select {
	case port, ok := <-ready:
		if !ok || port == 0 {
			p.t.Fatalf("node %s did not start", p.script)
		}
		p.port = port
	case <-time.After(90 * time.Second):
		p.t.Fatalf("node %s did not start in 90 s", p.script)
	}
	p.mu.Lock()
	p.cmd, p.stdin = cmd, stdin
	p.mu.Unlock()
}

// kill kills the peer at once (SIGKILL).
func (p *nodePeer) kill() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
}

func (p *nodePeer) addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// fhirGet GETs path from the FHIR peer and decodes its JSON.
func fhirGet(t *testing.T, p *nodePeer, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr() + "/" + path)
	if err != nil {
		t.Fatalf("FHIR peer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("FHIR peer GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type received struct {
	Transactions       int            `json:"transactions"`
	DocumentReferences map[string]int `json:"documentReferences"`
}

// mdmRead is a line of mdm-peer.mjs's log.
type mdmRead struct {
	Event     string `json:"event"`
	ControlID string `json:"control_id"`
	MRN       string `json:"mrn"`
	Authority string `json:"authority"`
	TXA2      string `json:"txa2"`
	TXA12     string `json:"txa12"`
	TXA13     string `json:"txa13"`
	TXA19     string `json:"txa19"`
	PDFSHA256 string `json:"pdf_sha256"`
	Duplicate bool   `json:"duplicate"`
	Ack       string `json:"ack"`
}

func readMDMLog(t *testing.T, path string) []mdmRead {
	t.Helper()
	var out []mdmRead
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m mdmRead
		decodeJSON(t, l, &m)
		out = append(out, m)
	}
	return out
}

// deliveryStack is a stack whose workers deliver to a FHIR peer and an MLLP peer.
type deliveryStack struct {
	*stack
	fhir, mdm       *nodePeer
	fhirStore, mlog string
}

func newDeliveryStack(t *testing.T, fhirArgs, mdmArgs []string, extra ...string) *deliveryStack {
	needPeer(t)
	if _, err := os.Stat(filepath.Join(hl7Peer, "node_modules", "@medplum", "fhir-router")); err != nil {
		t.Fatalf("@medplum/fhir-router is not installed (%v): deploy/install.sh runs npm ci in %s", err, hl7Peer)
	}
	dir := t.TempDir()
	d := &deliveryStack{fhirStore: filepath.Join(dir, "fhir-store.json"), mlog: filepath.Join(dir, "mdm.log")}
	d.fhir = startNodePeer(t, "fhir-peer.mjs", append([]string{"--store", d.fhirStore}, fhirArgs...)...)
	d.mdm = startNodePeer(t, "mdm-peer.mjs", append([]string{"--listen", "--log", d.mlog}, mdmArgs...)...)
	d.stack = newStack(t, append([]string{"CHARTSCAN_MRN_SYSTEM_URI=" + testMRNSystem, "CHARTSCAN_FACILITY=TESTHOSPITAL",
		"CHARTSCAN_FHIR_URL=http://" + d.fhir.addr() + "/", "CHARTSCAN_HL7_ADDR=" + d.mdm.addr(),
		"CHARTSCAN_DELIVER_RETRY_MAX=2s"}, extra...)...)
	return d
}

// deliveries runs `deliver status --batch --json` (waiting up to wait) and returns the
// versions by document number.
func (s *stack) deliveries(batch string, wait time.Duration) map[string]storage.DeliveryStatus {
	s.t.Helper()
	out, errs, code := s.run("deliver", "status", "--batch", batch, "--json", "--wait", wait.String())
	if code != 0 && code != 3 {
		s.t.Fatalf("deliver status: exit %d\n%s", code, errs)
	}
	m := map[string]storage.DeliveryStatus{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var d storage.DeliveryStatus
		decodeJSON(s.t, l, &d)
		m[d.Number()] = d
	}
	return m
}

// TestDeliverToPeers: the worker delivers every patient document of the sample charts to
// both peers; each is acknowledged; the FHIR server holds one DocumentReference per
// document (validated by @medplum's validator as it took it), found again by a search
// on the patient's MRN, its Binary the PDF; the MLLP receiver got one MDM^T02 per
// document, its parser reads PID-3 with the MRN and its authority, TXA-12 the document
// number, and the PDF decoded from OBX-5 has the Binary's SHA-256. Then a reviewer
// moves page 2 of chart-001 to another patient: version 1 of its document is superseded
// (entered in error), version 2 replaces it — FHIR: version 1's DocumentReference
// entered-in-error, version 2's relatesTo replaces it; HL7: a T11 cancel of version 1
// and a T02 of version 2 —, and the new document of the other patient is delivered.
// Every delivery is in the audit log, and no log holds PHI.
func TestDeliverToPeers(t *testing.T) {
	s := newDeliveryStack(t, nil, nil, "CHARTSCAN_QA_RATE=1")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	srv := s.startServe() // appends the delivery events to the audit log
	batch := strings.TrimSpace(s.mustRun("ingest", "--wait", "../../testdata/charts"))
	docs := s.patientDocs(batch)
	got := s.deliveries(batch, 3*time.Minute)
	if len(got) != len(docs) || len(docs) == 0 {
		t.Fatalf("%d deliveries for %d patient documents", len(got), len(docs))
	}
	for _, d := range docs {
		g := got[d.number()]
		if g.State != storage.PDAcknowledged || len(g.Targets) != 2 {
			t.Errorf("%s: %s, targets %+v; want acknowledged by both", d.number(), g.State, g.Targets)
		}
	}
	var rec received
	fhirGet(t, s.fhir, "$received", &rec)
	pdfs := map[string]string{}
	for _, d := range docs {
		if rec.DocumentReferences[d.number()] != 1 {
			t.Errorf("the FHIR server holds %d DocumentReferences %s, want 1", rec.DocumentReferences[d.number()], d.number())
		}
		// Read back by a search on the patient's MRN.
		var b struct {
			Entry []struct{ Resource map[string]any }
		}
		fhirGet(t, s.fhir, "DocumentReference?subject:identifier="+url.QueryEscape(testMRNSystem+"|"+d.MRN), &b)
		found := false
		for _, e := range b.Entry {
			if e.Resource["masterIdentifier"].(map[string]any)["value"] != d.number() {
				continue
			}
			found = true
			bin := e.Resource["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)["url"].(string)
			var binary struct{ ContentType, Data string }
			fhirGet(t, s.fhir, bin, &binary)
			pdf, _ := base64.StdEncoding.DecodeString(binary.Data)
			pdfs[d.number()] = sha(pdf)
			if _, pages := pdfText(t, pdf); pages != fmt.Sprint(len(d.Pages)) {
				t.Errorf("%s: the PDF the FHIR server holds has %s pages, want %d", d.number(), pages, len(d.Pages))
			}
		}
		if !found {
			t.Errorf("a search for %s's patient does not find DocumentReference %s", d.number(), d.number())
		}
	}
	msgs := readMDMLog(t, s.mlog)
	for _, d := range docs {
		n := 0
		for _, m := range msgs {
			if m.TXA12 == d.number() && !m.Duplicate {
				n++
				if m.Event != "T02" || m.MRN != d.MRN || m.Authority != "&2.16.840.1.113883.19.5&ISO" || m.PDFSHA256 != pdfs[d.number()] {
					t.Errorf("MDM of %s: %+v (PDF sha %s)", d.number(), m, pdfs[d.number()])
				}
			}
		}
		if n != 1 {
			t.Errorf("the MLLP receiver applied %d messages of %s, want 1", n, d.number())
		}
	}

	// A reviewer's correction after delivery: page 2 of chart-001 is another patient's.
	s.addUser("rita", "reviewer")
	rita := apiClient(t, srv, s.token("rita"))
	var docID string
	if err := s.dbConn().QueryRow(context.Background(), `SELECT document_id::text FROM batch_documents WHERE batch_id::text = $1 AND file_name = 'chart-001.pdf'`, batch).Scan(&docID); err != nil {
		t.Fatal(err)
	}
	first := docs[0]
	page := func() apiPage {
		_, body := rita.do("GET", "/api/v1/pages/"+docID+"/2", nil)
		var p apiPage
		decodeJSON(t, body, &p)
		return p
	}
	if st, body := rita.do("POST", "/api/v1/qa/"+docID+"/2", fmt.Sprintf(`{"mrn":%q,"outcome":"wrong"}`, page().MRN)); st != http.StatusNoContent {
		t.Fatalf("quality check: %d %s", st, body)
	}
	const other = "436635585"
	if st, body := rita.do("POST", "/api/v1/review/"+docID+"/2", fmt.Sprintf(`{"version":%d,"action":"assign","mrn":%q}`, page().Version, other)); st != http.StatusOK {
		t.Fatalf("decision: %d %s", st, body)
	}
	v2 := first.ID + "-v2"
	got = s.deliveries(batch, 3*time.Minute)
	if g := got[v2]; g.State != storage.PDAcknowledged || g.ReplacesVersion != 1 {
		t.Errorf("version 2: %s replacing v%d, want acknowledged replacing v1", g.State, g.ReplacesVersion)
	}
	if g := got[first.number()]; g.State != storage.PDSuperseded || !g.EnteredInError || g.RetiredAt == nil {
		t.Errorf("version 1: %s, entered in error %v, retired %v; want superseded, entered in error, retired", g.State, g.EnteredInError, g.RetiredAt)
	}
	otherDelivered := false
	for _, g := range got {
		if g.DocumentID == docID && slices.Contains(g.Pages, 2) && g.State == storage.PDAcknowledged {
			otherDelivered = true
		}
	}
	if !otherDelivered {
		t.Errorf("page 2 is in no acknowledged document of the patient it now belongs to")
	}
	var b struct {
		Entry []struct{ Resource map[string]any }
	}
	fhirGet(t, s.fhir, "DocumentReference?identifier="+url.QueryEscape("urn:chartscan:document-number|"+first.number()), &b)
	if len(b.Entry) != 1 || b.Entry[0].Resource["status"] != "entered-in-error" {
		t.Errorf("version 1's DocumentReference on the FHIR server: %v, want entered-in-error", b.Entry)
	}
	fhirGet(t, s.fhir, "DocumentReference?identifier="+url.QueryEscape("urn:chartscan:document-number|"+v2), &b)
	if len(b.Entry) != 1 {
		t.Fatalf("the FHIR server holds %d DocumentReferences %s", len(b.Entry), v2)
	}
	if rel, _ := json.Marshal(b.Entry[0].Resource["relatesTo"]); !strings.Contains(string(rel), `"replaces"`) || !strings.Contains(string(rel), first.number()) {
		t.Errorf("version 2's relatesTo: %s", rel)
	}
	var cancel, t02 int
	for _, m := range readMDMLog(t, s.mlog) {
		switch {
		case m.Event == "T11" && m.TXA12 == first.number() && m.MRN == first.MRN && !m.Duplicate:
			cancel++
		case m.Event == "T02" && m.TXA12 == v2 && !m.Duplicate:
			t02++
		}
	}
	if cancel != 1 || t02 != 1 {
		t.Errorf("the MLLP receiver applied %d cancels of version 1 and %d T02 of version 2, want 1 and 1", cancel, t02)
	}
	// Audited: serve appended the workers' events, signed.
	deadline := time.Now().Add(30 * time.Second)
	for s.auditCount("deliver.send", "system:deliver", "patient_document:", "ok") < 2*len(docs) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	if n := s.auditCount("deliver.send", "system:deliver", "patient_document:", "ok"); n < 2*len(docs) {
		t.Errorf("%d deliver.send audit entries, want at least %d", n, 2*len(docs))
	}
	if n := s.auditCount("deliver.cancel", "system:deliver", "patient_document:"+first.ID, "ok"); n != 1 {
		t.Errorf("%d deliver.cancel audit entries of version 1, want 1", n)
	}
	if out := s.mustRun("audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %s", out)
	}
	s.addUser("ada", "admin")
	checkNoPHIInLogs(t, s.stack, apiClient(t, srv, s.token("ada")), batch)
}

// TestDeliverRejectedRetriedAndKilled: a FHIR server that answers 422 and an interface
// engine that answers AE make every document rejected, with both reasons, shown by the
// API; once they take documents, a retry through the API delivers them. Then the FHIR peer and the MLLP peer hold each answer for a
// while: the worker is killed (SIGKILL) in the middle of deliveries, then the FHIR peer,
// then the MLLP peer, each started again; in the end every document is delivered
// exactly once — one DocumentReference per document number on the FHIR server, one MDM
// applied per number by the receiver (a message sent again after a kill, with its
// number and control id, is only acknowledged again by its duplicate check, as an EHR's
// is).
func TestDeliverRejectedRetriedAndKilled(t *testing.T) {
	s := newDeliveryStack(t, []string{"--reject", "Patient not registered in this EHR"}, []string{"--ack", "AE", "--text", "Document type not accepted"})
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	w := s.startWorker()
	srv := s.startServe()
	batch := strings.TrimSpace(s.mustRun("ingest", "--wait", "../../testdata/charts"))
	docs := s.patientDocs(batch)
	got := s.deliveries(batch, 3*time.Minute)
	for _, d := range docs {
		g := got[d.number()]
		if g.State != storage.PDRejected || !strings.Contains(g.Reason, "HL7: ") || !strings.Contains(g.Reason, "Document type not accepted") ||
			!strings.Contains(g.Reason, "FHIR: Patient not registered in this EHR") {
			t.Errorf("%s: %s %q, want rejected with the receiver's reason", d.number(), g.State, g.Reason)
		}
	}
	// The API shows the batch's documents and their states; the clerk who uploaded
	// the batch retries them once the engine takes them.
	s.addUser("ada", "admin")
	ada := apiClient(t, srv, s.token("ada"))
	st, body := ada.do("GET", "/api/v1/batches/"+batch+"/patient-documents", nil)
	if st != http.StatusOK || !strings.Contains(body, `"state":"rejected"`) || !strings.Contains(body, "Document type not accepted") {
		t.Fatalf("GET patient-documents: %d %.500s", st, body)
	}
	// Both peers take documents now, each holding its answer a while.
	s.fhir.args = []string{"--store", s.fhirStore, "--delay-ms", "1500"}
	s.mdm.args = []string{"--listen", "--log", s.mlog, "--delay-ms", "700"}
	s.fhir.kill()
	s.fhir.start()
	s.mdm.kill()
	s.mdm.start()
	w.stop(syscall.SIGKILL) // and the worker dies with the retries under way
	for _, d := range docs {
		if st, body := ada.do("POST", fmt.Sprintf("/api/v1/patient-documents/%s/%d/retry", d.ID, d.Version), nil); st != http.StatusOK {
			t.Errorf("retry %s: %d %s", d.number(), st, body)
		}
	}
	if st, _ := ada.do("POST", fmt.Sprintf("/api/v1/patient-documents/%s/%d/retry", docs[0].ID, docs[0].Version), nil); st != http.StatusConflict {
		t.Errorf("retry of a version that is not rejected: %d, want 409", st)
	}
	w = s.startWorker()
	// Kill the worker mid-delivery (the FHIR peer holds each answer 1.5 s), then the
	// FHIR peer, then the MLLP peer; start each again.
	waitUntil(t, func() bool { var r received; fhirGet(t, s.fhir, "$received", &r); return r.Transactions >= 1 })
	w.stop(syscall.SIGKILL)
	w = s.startWorker()
	waitUntil(t, func() bool { var r received; fhirGet(t, s.fhir, "$received", &r); return r.Transactions >= 3 })
	s.fhir.kill()
	time.Sleep(3 * time.Second) // the worker meets a FHIR server that is down
	s.fhir.start()
	waitUntil(t, func() bool { return len(readMDMLog(t, s.mlog)) > len(docs)+1 })
	s.mdm.kill()
	time.Sleep(3 * time.Second)
	s.mdm.start()
	got = s.deliveries(batch, 4*time.Minute)
	var rec received
	fhirGet(t, s.fhir, "$received", &rec)
	msgs := readMDMLog(t, s.mlog)
	resent := 0
	for _, d := range docs {
		if g := got[d.number()]; g.State != storage.PDAcknowledged {
			t.Errorf("%s after the kills: %s (%s %s)", d.number(), g.State, g.Reason, g.Waiting)
		}
		if n := rec.DocumentReferences[d.number()]; n != 1 {
			t.Errorf("the FHIR server holds %d DocumentReferences %s, want 1", n, d.number())
		}
		applied := 0
		for _, m := range msgs {
			if m.TXA12 == d.number() && m.Ack == "AA" {
				if m.Duplicate {
					resent++
				} else {
					applied++
				}
			}
		}
		if applied != 1 {
			t.Errorf("the MLLP receiver applied %s %d times, want once", d.number(), applied)
		}
	}
	t.Logf("%d documents; FHIR transactions %d; MDM messages read %d, %d of them sent again after a kill and only acknowledged",
		len(docs), rec.Transactions, len(msgs), resent)
	if n := s.auditCount("deliver.retry", "", "patient_document:", "ok"); n < len(docs) {
		t.Errorf("%d retries audited, want %d", n, len(docs))
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
