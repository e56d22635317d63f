package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/synth"
)

// The integration tests drive the real binary against the real stack, as a clerk or a
// script would: records import, worker, ingest --wait, export.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chartscan-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "chartscan")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build chartscan: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is one test's slice of the stack plus the logs of every process it ran, which
// the PHI test reads.
type stack struct {
	t    *testing.T
	env  []string
	logs *syncBuffer
}

// syncBuffer collects the output of several processes at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStack(t *testing.T, extra ...string) *stack {
	e := stacktest.New(t)
	env := append(os.Environ(), e.Vars()...)
	env = append(env, "OMP_THREAD_LIMIT=1", "CHARTSCAN_LOG_LEVEL=debug")
	return &stack{t: t, env: append(env, extra...), logs: &syncBuffer{}}
}

// getenv returns the value the stack gives a variable.
func (s *stack) getenv(name string) string {
	v := ""
	for _, kv := range s.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val // the last one wins, as for exec
		}
	}
	return v
}

// run runs chartscan with args and returns stdout, stderr and the exit code.
func (s *stack) run(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	s.logs.Write(errb.Bytes())
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("chartscan %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// mustRun runs chartscan and fails the test on a non-zero exit.
func (s *stack) mustRun(args ...string) string {
	s.t.Helper()
	out, errs, code := s.run(args...)
	if code != 0 {
		s.t.Fatalf("chartscan %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// importEMPI writes csv (an EMPI export with its header) to a file and imports it with
// `chartscan records import`.
func (s *stack) importEMPI(csv string) {
	s.t.Helper()
	empi := filepath.Join(s.t.TempDir(), "empi.csv")
	if err := os.WriteFile(empi, []byte(csv), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.mustRun("records", "import", empi)
}

// openDB opens the stack's database through package storage, closed with the test.
func (s *stack) openDB(ctx context.Context) *storage.DB {
	s.t.Helper()
	db, err := storage.Open(ctx, s.getenv("DATABASE_URL"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(db.Close)
	return db
}

type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
}

// startWorker starts `chartscan worker`; it is killed when the test ends.
func (s *stack) startWorker(extra ...string) *proc {
	s.t.Helper()
	cmd := exec.Command(binary, "worker")
	cmd.Env = append(append([]string{}, s.env...), extra...)
	p := &proc{cmd: cmd, logs: s.logs}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

func (p *proc) stop(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

type exportRow struct {
	File          string   `json:"file"`
	DocumentID    string   `json:"document_id"`
	Page          int      `json:"page"`
	Status        string   `json:"status"`
	MRN           *string  `json:"mrn"`
	Score         *float64 `json:"score"`
	DocType       *string  `json:"doc_type"`
	DateOfService *string  `json:"date_of_service"`
	Rotation      *int     `json:"rotation"`
	Part          int      `json:"part"`
}

func (s *stack) export(args ...string) []exportRow {
	s.t.Helper()
	out := s.mustRun(append([]string{"export", "--format", "jsonl"}, args...)...)
	var rows []exportRow
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r exportRow
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			s.t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows
}

func readTruth(t *testing.T, path string) *synth.Truth {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tr synth.Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

// checkAgainstTruth checks an export against a generator's ground truth with the same
// evaluation `chartscan evaluate` prints: every page present exactly once, no page
// auto-filed to a wrong patient or to one not in the EMPI; and, when wantFullAuto, every
// full page (MRN+name+DOB) of an EMPI patient auto-filed.
func checkAgainstTruth(t *testing.T, rows []exportRow, truth *synth.Truth, wantFullAuto bool) evaluation {
	t.Helper()
	var sr []storage.ExportRow
	for _, r := range rows {
		sr = append(sr, storage.ExportRow(r))
	}
	ev := evaluate(sr, truth)
	for _, p := range ev.Problems {
		t.Error(p)
	}
	if c := ev.Kinds[synth.KindFull]; wantFullAuto && c != nil && c.AutoRight != c.Pages {
		t.Errorf("%d of %d clean full pages of EMPI patients auto-filed, want all", c.AutoRight, c.Pages)
	}
	return ev
}

func TestPipelineFilesSampleBatchAgainstGroundTruth(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	out, errs, code := s.run("ingest", "--wait", "../../testdata/charts")
	if code != 0 {
		t.Fatalf("ingest --wait: exit %d\n%s", code, errs)
	}
	batch := strings.TrimSpace(out)
	if !strings.Contains(errs, "auto") || !strings.Contains(errs, "pages/second") {
		t.Errorf("ingest --wait printed no summary table:\n%s", errs)
	}
	truthPath := "../../testdata/charts/truth.json"
	checkAgainstTruth(t, s.export("--batch", batch), readTruth(t, truthPath), true)
	if out := s.mustRun("evaluate", "--truth", truthPath, "--batch", batch); !strings.Contains(out, "auto-filed to a wrong patient: 0; not-in-EMPI pages auto-filed: 0") {
		t.Errorf("evaluate:\n%s", out)
	}

	// The export without --batch holds the same pages: every page of every document once.
	if all := s.export(); len(all) != len(s.export("--batch", batch)) {
		t.Errorf("export of everything has %d rows, of the only batch %d", len(all), len(s.export("--batch", batch)))
	}

	// The patient missing from the EMPI is registered later: re-filing the batch (without
	// reading it again) files their page, and changes no other page's filing.
	before := s.export("--batch", batch)
	s.mustRun("records", "import", "../../testdata/empi/admitted-later.csv")
	out = s.mustRun("refile", "--batch", batch, "--extract")
	if !strings.Contains(out, "re-filed 3 documents: 9 auto, 0 review, 0 unmatched") {
		t.Errorf("refile printed:\n%s", out)
	}
	after := s.export("--batch", batch)
	if len(after) != len(before) {
		t.Fatalf("export after refile has %d rows, before %d", len(after), len(before))
	}
	for i, r := range after {
		b := before[i]
		if r.File == "chart-002.pdf" && r.Page == 3 {
			if r.Status != "auto" || r.MRN == nil || *r.MRN != "769277138" {
				t.Errorf("newly registered patient's page after refile: %s %v, want auto to 769277138", r.Status, deref(r.MRN))
			}
			continue
		}
		if r.Status != b.Status || deref(r.MRN) != deref(b.MRN) {
			t.Errorf("%s page %d changed on refile: %s %s -> %s %s", r.File, r.Page, b.Status, deref(b.MRN), r.Status, deref(r.MRN))
		}
	}
	if out := s.mustRun("audit", "list", "--action", "batch.refile"); !strings.Contains(out, "batch:"+batch) {
		t.Errorf("no audit entry for the refile:\n%s", out)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestIngestSameContentTwiceIsOneDocument(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	dir := t.TempDir()
	src, err := os.ReadFile("../../testdata/charts/chart-003.pdf")
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes under two names, and again in a second batch.
	for _, n := range []string{"a.pdf", "b.pdf"} {
		if err := os.WriteFile(filepath.Join(dir, n), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	first := strings.TrimSpace(s.mustRun("ingest", "--wait", dir))
	_, errs, code := s.run("ingest", "--wait", filepath.Join(dir, "a.pdf"))
	if code != 0 {
		t.Fatalf("second ingest: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "already stored") {
		t.Errorf("second ingest does not say the file was already stored:\n%s", errs)
	}
	all := s.export()
	docs := map[string]bool{}
	for _, r := range all {
		docs[r.DocumentID] = true
	}
	if len(docs) != 1 || len(all) != 2 {
		t.Errorf("after three uploads of one file: %d documents, %d pages; want 1 document of 2 pages", len(docs), len(all))
	}
	if got := s.export("--batch", first); len(got) != 2 {
		t.Errorf("first batch exports %d pages, want 2", len(got))
	}
}

// An archive ingest names files by their path inside the folder, and one that was
// interrupted is resumed with --batch: the files the batch holds are skipped, the rest
// join the same batch.
func TestIngestResumesABatch(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()
	put := func(name, src string) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, mustRead(t, src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Two files called chart.pdf in different boxes; a third arrives after the first run.
	put("box-1/chart.pdf", "../../testdata/charts/chart-001.pdf")
	put("box-2/chart.pdf", "../../testdata/charts/chart-002.pdf")
	batch := strings.TrimSpace(s.mustRun("ingest", "--urgent", dir))
	put("box-2/late.pdf", "../../testdata/charts/chart-003.pdf")
	out, errs, code := s.run("ingest", "--batch", batch, dir)
	if code != 0 || strings.TrimSpace(out) != batch {
		t.Fatalf("resumed ingest: exit %d, printed %q\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "2 of 3 files are already in batch "+batch+": skipped") {
		t.Errorf("resumed ingest does not say what it skipped:\n%s", errs)
	}
	conn := s.dbConn()
	var urgent bool
	if err := conn.QueryRow(context.Background(), `SELECT urgent FROM batches WHERE id::text = $1`, batch).Scan(&urgent); err != nil || !urgent {
		t.Errorf("batch ingested --urgent: urgent %v (%v)", urgent, err)
	}
	rows, err := conn.Query(context.Background(), `SELECT file_name FROM batch_documents WHERE batch_id::text = $1 ORDER BY 1`, batch)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"box-1/chart.pdf", "box-2/chart.pdf", "box-2/late.pdf"}; !slices.Equal(names, want) {
		t.Errorf("batch files %v, want %v", names, want)
	}
	if _, errs, code := s.run("ingest", "--batch", "00000000-0000-0000-0000-000000000000", dir); code == 0 || !strings.Contains(errs, "no batch") {
		t.Errorf("resuming a batch that does not exist: exit %d\n%s", code, errs)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordsImportTwiceChangesNothing(t *testing.T) {
	s := newStack(t)
	first := s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	if !strings.Contains(first, "59 new") {
		t.Errorf("first import: %q, want 59 new", first)
	}
	second := s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	if !strings.Contains(second, "0 new, 0 updated, 59 unchanged") {
		t.Errorf("second import: %q, want 0 new, 0 updated, 59 unchanged", second)
	}
	// A changed record is an update of that one patient only.
	b, _ := os.ReadFile("../../testdata/empi/sample.csv")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	f := strings.Split(lines[1], ",")
	f[9] = "555-0199" // phone
	lines[1] = strings.Join(f, ",")
	changed := filepath.Join(t.TempDir(), "changed.csv")
	os.WriteFile(changed, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	third := s.mustRun("records", "import", changed)
	if !strings.Contains(third, "0 new, 1 updated, 58 unchanged") {
		t.Errorf("import with one changed record: %q", third)
	}
}

// TestHL7MergeMovesFiledPages files a chart, then imports HL7 ADT: an A04 registering a
// patient and an A40 merging the chart's first patient into them. The pages move.
func TestHL7MergeMovesFiledPages(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	batch := strings.TrimSpace(s.mustRun("ingest", "--wait", "../../testdata/charts/chart-003.pdf"))
	before := s.export("--batch", batch)
	if len(before) != 2 || before[0].Status != "auto" || before[0].MRN == nil {
		t.Fatalf("chart-003 page 1 not auto-filed: %+v", before)
	}
	merged := *before[0].MRN
	const survivor = "900000006"
	adt := strings.Join([]string{
		`MSH|^~\&|ADT|EXAMPLE|CHARTSCAN|EXAMPLE|20261126101500||ADT^A04|MSG0001|P|2.5`,
		`PID|1||` + survivor + `^^^EXAMPLE^MR||SYNTHETIC^Survivor||19700101|F`,
		``,
		`MSH|^~\&|ADT|EXAMPLE|CHARTSCAN|EXAMPLE|20261126101600||ADT^A40|MSG0002|P|2.5`,
		`PID|1||` + survivor + `^^^EXAMPLE^MR||SYNTHETIC^Survivor||19700101|F`,
		`MRG|` + merged + `^^^EXAMPLE^MR`,
	}, "\r")
	path := filepath.Join(t.TempDir(), "adt.hl7")
	os.WriteFile(path, []byte(adt+"\r"), 0o644)
	out := s.mustRun("records", "import", path)
	if !strings.Contains(out, "1 merges moved 1 filed pages") {
		t.Errorf("records import of HL7: %q", out)
	}
	after := s.export("--batch", batch)
	if after[0].MRN == nil || *after[0].MRN != survivor {
		t.Errorf("page 1 filed to %v after the merge, want the survivor %s", after[0].MRN, survivor)
	}
	if *after[1].MRN != *before[1].MRN {
		t.Errorf("page 2 moved from %s to %s; only the merged patient's pages move", *before[1].MRN, *after[1].MRN)
	}
	// Importing the same messages again changes nothing more.
	if again := s.mustRun("records", "import", path); !strings.Contains(again, "0 new, 0 updated") {
		t.Errorf("second HL7 import: %q", again)
	}
}
