package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/worker"
)

// TestWorkerExportsStageTimes: a worker serves chartscan_stage_seconds on its metrics
// address, and after a batch every stage of a page's way has been timed once per page
// (the document's match once per document).
func TestWorkerExportsStageTimes(t *testing.T) {
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.startWorker("CHARTSCAN_WORKER_METRICS_ADDR="+addr, "CHARTSCAN_CONCURRENCY=2")
	dir := t.TempDir()
	b, err := os.ReadFile("../../testdata/charts/chart-001.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chart-001.pdf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mustRun("ingest", "--wait", dir)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("worker metrics: %v\n%s", err, tail(s.logs.String(), 20))
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	count := map[string]int{}
	for _, m := range regexp.MustCompile(`chartscan_stage_seconds_count\{stage="([a-z_]+)"\} (\d+)`).FindAllStringSubmatch(string(body), -1) {
		count[m[1]], _ = strconv.Atoi(m[2])
	}
	pages := 0
	for _, d := range readTruth(t, "../../testdata/charts/truth.json").Documents {
		if d.File == "chart-001.pdf" {
			pages = len(d.Pages)
		}
	}
	for _, stage := range []string{worker.StageQueueOCR, worker.StageFetch, ocr.StageDecode, ocr.StageDeskew,
		ocr.StageBarcodes, ocr.StageTesseract, worker.StageReader, worker.StageStore, worker.StageQueueExtract, worker.StageExtract} {
		if count[stage] != pages {
			t.Errorf("stage %s timed %d times, want %d (one per page)", stage, count[stage], pages)
		}
	}
	// Orientation detection runs only on a read that looks wrong; the sample's pages are
	// upright and clean.
	if count[ocr.StageOrientation] != 0 {
		t.Errorf("orientation detected on %d upright pages, want none", count[ocr.StageOrientation])
	}
	if count[worker.StageMatch] != 1 {
		t.Errorf("stage match timed %d times, want 1", count[worker.StageMatch])
	}
	if !strings.Contains(string(body), "process_resident_memory_bytes") {
		t.Error("no process metrics (RSS) on the worker's endpoint")
	}
}
