package ocr

import (
	"context"
	"strings"
	"testing"

	"github.com/chartscan/chartscan"
)

// TestSplitRefusesTooManyPages: a file over the page limit fails with a sentence a clerk
// can act on, before any page is handed over; at the limit it splits.
func TestSplitRefusesTooManyPages(t *testing.T) {
	const path = "../testdata/charts/chart-001.pdf" // 4 pages
	emitted := 0
	_, err := Split(context.Background(), path, Limits{MaxPixels: 100_000_000, RasterDPI: 300, RasterMaxPixels: 25_000_000, MaxPages: 3},
		func(PageImage) error { emitted++; return nil })
	if chartscan.ErrorCode(err) != chartscan.EInvalid || !strings.Contains(chartscan.ErrorMessage(err), "4 pages, more than the limit of 3") {
		t.Errorf("4 pages, limit 3: %v, want an input error naming both", err)
	}
	if emitted != 0 {
		t.Errorf("%d pages handed over before the refusal, want 0", emitted)
	}
	n, err := Split(context.Background(), path, Limits{MaxPixels: 100_000_000, RasterDPI: 300, RasterMaxPixels: 25_000_000, MaxPages: 4},
		func(PageImage) error { return nil })
	if err != nil || n != 4 {
		t.Errorf("4 pages, limit 4: %d, %v", n, err)
	}
}
