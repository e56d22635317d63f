package main

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestWorkerKilledMidBatchLosesNothing kills the worker with SIGKILL — no chance to hand
// its tasks back — while pages are being read, starts another, and checks that the batch
// completes with every page exactly once and none failed.
func TestWorkerKilledMidBatchLosesNothing(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()
	s.mustRun("synth", "--identities", "../../testdata/identities/splink/fake_1000.csv", "--out", dir, "--seed", "7",
		"--documents", "4", "--min-patients", "2", "--max-patients", "2", "--min-pages", "2", "--max-pages", "2",
		"--skew", "0.5", "--not-in-empi", "0")
	s.mustRun("records", "import", filepath.Join(dir, "empi.csv"))
	truth := readTruth(t, filepath.Join(dir, "truth.json"))
	pages := 0
	for _, d := range truth.Documents {
		pages += len(d.Pages)
	}

	first := s.startWorker()
	batch := strings.TrimSpace(s.mustRun("ingest", dir))
	// PostgreSQL, not the log, says how many pages OCR has read.
	conn, err := pgx.Connect(context.Background(), s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	readPages := func() int {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pages WHERE ocr_at IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Minute)
	for readPages() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("worker read fewer than 3 pages in 5 minutes:\n%s", s.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	first.stop(syscall.SIGKILL)
	read := readPages()
	if read >= pages {
		t.Fatalf("all %d pages were read before the kill; the test needs a longer batch", pages)
	}
	t.Logf("killed the worker after %d of %d pages were read", read, pages)

	s.startWorker()
	out, errs, code := s.run("status", "--wait", batch)
	if code != 0 {
		t.Fatalf("status --wait: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "total") {
		t.Errorf("status printed no summary:\n%s", out)
	}
	checkAgainstTruth(t, s.export("--batch", batch), truth, false)
	rows := s.export("--batch", batch)
	for _, r := range rows {
		if r.Status == "failed" || r.Status == "pending" {
			t.Errorf("%s page %d is %s after the restart", r.File, r.Page, r.Status)
		}
	}
}
