package ocr

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestEngineReadsASyntheticChartPage(t *testing.T) {
	var page PageImage
	_, err := Split(context.Background(), "../testdata/charts/chart-001.pdf", DefaultLimits, func(p PageImage) error {
		if p.Number == 1 {
			page = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(2, "eng")
	defer e.Close()
	// Two reads at once on two slots: each client is used by one goroutine at a time.
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.Read(context.Background(), page.Data, page.DPI)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("Read %d: %v", i, errs[i])
		}
		for _, want := range []string{"SYNTHETIC", "RADIOLOGY", "873077325"} {
			if !strings.Contains(r.Text, want) {
				t.Errorf("Read %d: text lacks %q:\n%s", i, want, r.Text)
			}
		}
		if r.Confidence < 60 || len(r.Words) < 20 {
			t.Errorf("Read %d: %d words at mean confidence %.0f; want a clean read", i, len(r.Words), r.Confidence)
		}
		for _, w := range r.Words {
			if w.Box.X1 <= w.Box.X0 || w.Box.Y1 <= w.Box.Y0 || w.Box.X1 > page.Width || w.Box.Y1 > page.Height {
				t.Fatalf("word box %+v outside the %dx%d page", w.Box, page.Width, page.Height)
			}
		}
	}
	if results[0].Text != results[1].Text {
		t.Errorf("the same page read twice gave different text")
	}
}

// samplePage is page 1 of the sample chart chart-001.pdf, as split for OCR.
func samplePage(t *testing.T) PageImage {
	t.Helper()
	var page PageImage
	if _, err := Split(context.Background(), "../testdata/charts/chart-001.pdf", DefaultLimits, func(p PageImage) error {
		if p.Number == 1 {
			page = p
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return page
}

func TestMain(m *testing.M) {
	// One thread per Tesseract, as in production (make test sets it too).
	os.Setenv("OMP_THREAD_LIMIT", "1")
	if os.Getenv(childTestEnv) == "1" {
		// The test binary as Isolated's child process (child_test.go).
		in, out, err := ChildStreams()
		if err == nil {
			e := NewEngine(1, "eng")
			err = ServeChild(in, out, e)
			e.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ocr child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A worker reads 10^5–10^7 pages in one process: reading must not leak C memory. After
// a warm-up, reading the same page again and again leaves the C heap where it was (a few
// hundred bytes a read at most). gosseract v2.4.1 as published grew it by about 4.4 KB a
// read of this 107-word page — every word and the result iterator: see
// third_party/gosseract.
func TestEngineReadLeaksNoCMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the same page 16 times (about 20 s)")
	}
	page := samplePage(t)
	// One OS thread for every C call, so one malloc arena serves them all and the
	// measure is not blurred by arenas of other threads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := NewEngine(1, "eng")
	defer e.Close()
	read := func() int {
		r, err := e.Read(context.Background(), page.Data, page.DPI)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Words)
	}
	for range 4 {
		read()
	}
	before := CHeapInUse()
	const reads = 12
	words := 0
	for range reads {
		words += read()
	}
	grown := CHeapInUse() - before
	if limit := int64(reads) << 10; grown > limit {
		t.Errorf("the C heap grew by %d bytes over %d reads of %d words (more than %d): a leak", grown, reads, words/reads, limit)
	}
	t.Logf("C heap growth over %d reads: %d bytes (%d words a read)", reads, grown, words/reads)
}

// A 1-bit page whose first eight pixels make a space (0x20) was read as no image at all:
// the page went through PNM to Tesseract, Leptonica's P4 reader could not read back what
// its writer wrote ("pixReadStreamPnm: read error in 4"), and gosseract went on to read
// an empty result and died of SIGSEGV. Found by make test-faults; the page is
// testdata/pages/pnm-first-byte-space.png. The image now reaches Tesseract without an
// encoding.
func TestEngineReadsAPageLeptonicaCouldNotRoundTrip(t *testing.T) {
	img, err := os.ReadFile("../testdata/pages/pnm-first-byte-space.png")
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(1, "eng")
	defer e.Close()
	res, err := e.Read(context.Background(), img, 300)
	if err != nil || len(res.Words) < 50 {
		t.Fatalf("read %d words, %v; want the page's words", len(res.Words), err)
	}
}
