package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/internal/stacktest"
)

// failingReader gives n bytes of a file, then fails as a clerk's dropped connection does.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), r.n)
	copy(p, strings.Repeat("%", k))
	r.n -= k
	return k, nil
}

// TestIngestCutOffUploadIsNoStoreFault: an upload whose own body fails or ends short is
// not reported as a store that did not answer (that message tells the clerk to wait and
// retry, not to send the file again), though the object store sees a cut stream either way.
func TestIngestCutOffUploadIsNoStoreFault(t *testing.T) {
	for _, kv := range stacktest.New(t).Vars() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	a, err := newApp(ctx, needDB|needObjects|needRedis)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := a.db.CreateBatch(ctx, chartscan.Batch{ID: uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    io.Reader
	}{
		{"connection dropped", &failingReader{n: 100 << 10}},
		{"shorter than its size", strings.NewReader(strings.Repeat("%", 100<<10))},
	} {
		_, _, err := a.ingester().Ingest(ctx, b.ID, "cut.pdf", c.r, 1<<20)
		if err == nil {
			t.Errorf("%s: the upload was taken", c.name)
			continue
		}
		var ce *chartscan.Error
		if errors.As(err, &ce) && ce.Code == eUnavailable {
			t.Errorf("%s: reported as a store fault: %v", c.name, err)
		}
	}
}
