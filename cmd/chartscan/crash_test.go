package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan/ocr"
)

// TestPagesThatCrashTheReaderFailAlone: in a batch, one page crashes the C reader
// (SIGSEGV in C, injected by size through ocr.FaultEnv) and one hangs it (a C call that
// never returns, ended by CHARTSCAN_OCR_TIMEOUT). Each is tried twice and failed as
// crashing the reader; the worker process — the same one throughout — keeps running and
// every other page of the batch is read and filed. Before, the first crash killed the
// worker with every page it was reading, and the page killed the next worker too.
func TestPagesThatCrashTheReaderFailAlone(t *testing.T) {
	s := newStack(t)
	dir := t.TempDir()
	s.mustRun("synth", "--identities", "../../testdata/identities/splink/fake_1000.csv", "--out", dir, "--seed", "11",
		"--documents", "2", "--min-patients", "1", "--max-patients", "1", "--min-pages", "2", "--max-pages", "2",
		"--not-in-empi", "0")
	s.mustRun("records", "import", filepath.Join(dir, "empi.csv"))
	for name, size := range map[string][2]int{"crash.png": {601, 803}, "hang.png": {603, 805}} {
		img := image.NewGray(image.Rect(0, 0, size[0], size[1]))
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := s.startWorker(ocr.FaultEnv+"=crash:601x803,hang:603x805", "CHARTSCAN_OCR_TIMEOUT=10s", "CHARTSCAN_CONCURRENCY=2")
	batch := strings.TrimSpace(s.mustRun("ingest", dir))
	if out, errs, code := s.run("status", "--wait", batch); code != 1 { // 1: pages failed
		t.Fatalf("status --wait: exit %d\n%s\n%s", code, out, errs)
	}
	if err := w.cmd.Process.Signal(syscall.Signal(0)); err != nil || w.cmd.ProcessState != nil {
		t.Fatalf("the worker did not survive the crashes: %v\n%s", err, tail(s.logs.String(), 40))
	}

	conn, err := pgx.Connect(context.Background(), s.getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `
		SELECT d.file_name, p.page_no, p.status, p.reason, p.reader_crashes
		FROM pages p JOIN documents d ON d.id = p.document_id WHERE d.batch_id::text = $1`, batch)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	pages := 0
	for rows.Next() {
		var file, status, reason string
		var n, crashes int
		if err := rows.Scan(&file, &n, &status, &reason, &crashes); err != nil {
			t.Fatal(err)
		}
		pages++
		switch file {
		case "crash.png", "hang.png":
			if status != "failed" || !strings.Contains(reason, "crashed the reader") || crashes != 2 {
				t.Errorf("%s: %s (%q) after %d crashes, want failed as crashing the reader after 2", file, status, reason, crashes)
			}
		default:
			if status == "failed" || status == "pending" || crashes != 0 {
				t.Errorf("%s page %d: %s (%q), %d crashes; only the poison pages may fail", file, n, status, reason, crashes)
			}
		}
	}
	if pages != 6 {
		t.Errorf("%d pages in the batch, want 6", pages)
	}
	crashes := 0
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "page crashed the reader") && strings.Contains(line, "crashes") {
			crashes++
		}
	}
	if crashes != 4 {
		t.Errorf("the worker logged %d reader crashes, want 4", crashes)
	}
}
