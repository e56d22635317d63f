package main

import (
	"os"
	"strings"
	"testing"
)

// TestLoadConfigLimits: the resource limits are settings with defaults, and a bad value
// stops the command naming the variable.
func TestLoadConfigLimits(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || c.Limits.MaxPages != 2000 || c.StreamsPerUser != 8 || c.SpoolBytes != 4<<30 || c.DecodeBytes != 256<<20 {
		t.Errorf("defaults: max pages %d, streams %d, spool %d, decode %d, %v", c.Limits.MaxPages, c.StreamsPerUser, c.SpoolBytes, c.DecodeBytes, err)
	}
	for _, name := range []string{"CHARTSCAN_MAX_PAGES", "CHARTSCAN_STREAMS_PER_USER", "CHARTSCAN_UPLOAD_SPOOL_BYTES", "CHARTSCAN_IMAGE_DECODE_BYTES"} {
		_, err := loadConfig(func(k string) string {
			if k == name {
				return "0"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=0: %v, want a refusal naming it", name, err)
		}
	}
}

// TestPageLimitFailsTheDocument: with CHARTSCAN_MAX_PAGES=3 a 4-page PDF fails its
// document, before any page is stored or read, with a sentence the clerk can act on;
// the rest of the batch completes.
func TestPageLimitFailsTheDocument(t *testing.T) {
	s := newStack(t, "CHARTSCAN_MAX_PAGES=3")
	s.startWorker()
	dir := t.TempDir()
	copyFile(t, "../../testdata/charts/chart-001.pdf", dir+"/chart-001.pdf") // 4 pages
	copyFile(t, "../../testdata/charts/chart-003.pdf", dir+"/chart-003.pdf") // 2 pages
	out, _, code := s.run("ingest", "--wait", dir)
	if code != 1 {
		t.Errorf("ingest --wait of a batch with a file over the page limit: exit %d, want 1\n%s", code, out)
	}
	batch := strings.TrimSpace(strings.Split(out, "\n")[0])
	status := s.mustRun("status", batch)
	if !strings.Contains(status, "4 pages, more than the limit of 3") || !strings.Contains(status, "documents: 2 (1 failed)") {
		t.Errorf("status after the limit:\n%s", status)
	}
	pages := 0
	for _, r := range s.export("--batch", batch) {
		if r.File == "chart-001.pdf" {
			pages++
			if r.Status != "failed" {
				t.Errorf("chart-001.pdf page %d: %s, want failed", r.Page, r.Status)
			}
		}
	}
	if pages != 1 {
		t.Errorf("chart-001.pdf exports %d pages, want its one failed page", pages)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
