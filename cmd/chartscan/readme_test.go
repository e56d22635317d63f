package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/ocr"
)

// Claims the README makes, each asserted (issue 10, item 11).

// coverBarcodes prints a cover sheet as a PDF file and returns the barcodes on it.
func coverBarcodes(t *testing.T, pdf []byte) []ocr.Barcode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cover.pdf")
	if err := os.WriteFile(path, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	var bs []ocr.Barcode
	_, err := ocr.Split(context.Background(), path, ocr.DefaultLimits, func(pi ocr.PageImage) error {
		img, _, err := image.Decode(bytes.NewReader(pi.Data))
		if err != nil {
			return err
		}
		bs = append(bs, ocr.DecodeBarcodes(img)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestCoverPrefixChangesPrinting: with CHARTSCAN_COVER_PREFIX set, the cover sheets that
// `chartscan coversheet` and the web print carry that prefix — the one the pipeline
// reads — so a sheet printed here files its pages. Before, printing kept CHARTSCAN:
// whatever the setting, and the facility's own sheets and chartscan's disagreed.
func TestCoverPrefixChangesPrinting(t *testing.T) {
	const prefix = "ACME-CHART:"
	s := newStack(t, "CHARTSCAN_COVER_PREFIX="+prefix)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	f, _ := os.ReadFile("../../testdata/empi/sample.csv")
	row := strings.Split(strings.Split(string(f), "\n")[1], ",")
	mrn := row[0]

	out := filepath.Join(t.TempDir(), "cli.pdf")
	s.mustRun("coversheet", "--mrn", mrn, "-o", out)
	cli, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	srv := s.startServe()
	s.addUser("rita", "reviewer")
	st, web := apiClient(t, srv, s.token("rita")).do("GET", "/coversheet?mrn="+mrn, nil)
	if st != http.StatusOK {
		t.Fatalf("web cover sheet: %d %.200s", st, web)
	}
	for what, pdf := range map[string][]byte{"coversheet": cli, "the web's /coversheet": []byte(web)} {
		bs := coverBarcodes(t, pdf)
		if len(bs) == 0 {
			t.Errorf("%s: no barcode found on the printed sheet", what)
		}
		for _, b := range bs {
			if want := prefix + "MRN=" + mrn; !strings.HasPrefix(b.Text, want) {
				t.Errorf("%s: %s barcode %q, want it to start %q", what, b.Format, b.Text, want)
			}
		}
		if c, ok := ocr.CoverSheet(bs, prefix); !ok || c.MRN != mrn {
			t.Errorf("%s: the reader with prefix %s finds %+v %v, want MRN %s", what, prefix, c, ok, mrn)
		}
	}
}

// TestExportReportsRotation: the export's rotation is the turn, in degrees clockwise,
// that made a read page upright — not null, as the README said it would stay "until
// issue 5". A page turned a quarter to the left exports 90, an upright one 0.
func TestExportReportsRotation(t *testing.T) {
	s := newStack(t)
	s.startWorker()
	dir := t.TempDir()
	for _, f := range []string{"phototest-rotated-L.png", "phototest.tif"} {
		b, err := os.ReadFile("../../testdata/corpus/tesseract-test/" + f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	batch := strings.TrimSpace(strings.Split(s.mustRun("ingest", "--wait", dir), "\n")[0])
	want := map[string]int{"phototest-rotated-L.png": 90, "phototest.tif": 0}
	rows := s.export("--batch", batch)
	if len(rows) != 2 {
		t.Fatalf("export: %d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.Rotation == nil || *r.Rotation != want[r.File] {
			got := "null"
			if r.Rotation != nil {
				got = fmt.Sprint(*r.Rotation)
			}
			t.Errorf("%s: rotation %s, want %d", r.File, got, want[r.File])
		}
	}
}

// TestAIRANoMatchPairRejected: the README says no AIRA "Match" pair is rejected outright
// (unmatched) — every one goes to review at worst. The indexer's TestAIRA logs that
// count; this asserts it, for both suites.
func TestAIRANoMatchPairRejected(t *testing.T) {
	for _, name := range []string{"MIIS-B.txt", "Dev-Test-2015-01-01.txt"} {
		f, err := os.Open(filepath.Join("..", "..", "testdata", "aira", name))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := indexer.RunAIRA(f, indexer.DefaultModel())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rep.MatchUnmatched); n > 0 || rep.Counts[indexer.AIRAMatch] == nil {
			t.Errorf("%s: %d \"Match\" pairs rejected outright (unmatched): %v", name, n, rep.MatchUnmatched)
		}
	}
}

// minioWithoutKMS starts a MinIO server with no KMS on a free port, stopped when the test
// ends, and returns its address.
func minioWithoutKMS(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("CHARTSCAN_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "chartscan")
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "minio-*", "minio"))
	if len(bins) == 0 {
		t.Fatalf("no MinIO server under %s: make test builds it (deploy/install.sh)", cache)
	}
	port := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	addr, console := port(), port()
	cmd := exec.Command(bins[len(bins)-1], "server", t.TempDir(), "--quiet", "--address", addr, "--console-address", console)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=nokms", "MINIO_ROOT_PASSWORD=nokms-secret-123", "MINIO_BROWSER=off", "MINIO_KMS_SECRET_KEY=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO without KMS did not start on %s", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMinIOWithoutKMSStopsObjectCommands: against a MinIO with no KMS, every command that
// stores or reads scans (ingest, worker, serve) stops at start saying why, rather than
// store PHI in the clear; MINIO_SSE=none says that is meant. Commands that only use
// PostgreSQL (records import, export, audit verify) do not touch MinIO and run.
func TestMinIOWithoutKMSStopsObjectCommands(t *testing.T) {
	addr := minioWithoutKMS(t)
	s := newStack(t, "MINIO_ENDPOINT="+addr, "MINIO_ACCESS_KEY=nokms", "MINIO_SECRET_KEY=nokms-secret-123")
	for _, args := range [][]string{
		{"ingest", "../../testdata/charts/chart-003.pdf"},
		{"worker"},
		{"serve", "--addr", "127.0.0.1:0"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = s.env
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(errb.String(), "KMS") || !strings.Contains(errb.String(), "MINIO_SSE=none") {
			t.Errorf("chartscan %s against MinIO without KMS: %v, stderr %q; want it to stop naming the KMS and MINIO_SSE=none", args[0], err, errb.String())
		}
	}
	for _, args := range [][]string{{"records", "import", "../../testdata/empi/sample.csv"}, {"export", "--format", "jsonl"}, {"audit", "verify"}} {
		if _, errs, code := s.run(args...); code != 0 {
			t.Errorf("chartscan %s (PostgreSQL only) against MinIO without KMS: exit %d %s", args[0], code, errs)
		}
	}
	s.env = append(s.env, "MINIO_SSE=none")
	if _, errs, code := s.run("ingest", "../../testdata/charts/chart-003.pdf"); code != 0 {
		t.Errorf("ingest with MINIO_SSE=none: exit %d %s", code, errs)
	}
}

// TestReadmeConfigTableMatchesSettings: README's configuration table and the settings
// table in config.go (the one `chartscan config` prints) name the same variables, so a
// setting added to either is documented in both.
func TestReadmeConfigTableMatchesSettings(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README has no Configuration section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	documented := map[string]bool{}
	for _, line := range strings.Split(sec, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		// The first column names one variable or several: `A`, `B`.
		for _, name := range strings.Split(cells[1], ",") {
			documented[strings.Trim(strings.TrimSpace(name), "`")] = true
		}
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
		if !documented[s.name] {
			t.Errorf("%s is a setting (config.go) but not in README's configuration table", s.name)
		}
	}
	for name := range documented {
		if !known[name] {
			t.Errorf("README's configuration table has %s, which config.go does not read", name)
		}
	}
}
