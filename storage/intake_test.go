package storage

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chartscan/chartscan"
)

// TestOpenIntakeBatch: a prefix's files go to one open batch, whoever takes them and
// however many take them at once; one idle too long is closed and the next file starts a
// new one; a watched folder's batch of the same label is another batch.
func TestOpenIntakeBatch(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			b, err := db.OpenIntakeBatch(ctx, chartscan.BatchIntake, "ward-3/box-0001", time.Hour)
			if err != nil {
				t.Error(err)
			}
			ids[i] = b.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("eight processes opening one prefix's batch at once got %v, want one batch", ids)
		}
	}
	first, err := db.Batch(ctx, ids[0])
	if err != nil || first.Label != "ward-3/box-0001" || first.Source != chartscan.BatchIntake {
		t.Fatalf("the batch: %+v, %v", first, err)
	}
	folder, err := db.OpenIntakeBatch(ctx, chartscan.BatchFolder, "ward-3/box-0001", time.Hour)
	if err != nil || folder.ID == ids[0] {
		t.Errorf("a folder's batch of the same label: %s (%v), want another batch than %s", folder.ID, err, ids[0])
	}
	time.Sleep(50 * time.Millisecond)
	next, err := db.OpenIntakeBatch(ctx, chartscan.BatchIntake, "ward-3/box-0001", 10*time.Millisecond)
	if err != nil || next.ID == ids[0] {
		t.Fatalf("after the batch was idle: %s (%v), want a new batch", next.ID, err)
	}
	var closed bool
	if err := db.pool.QueryRow(ctx, `SELECT closed_at IS NOT NULL FROM batches WHERE id = $1`, ids[0]).Scan(&closed); err != nil || !closed {
		t.Errorf("the idle batch is not closed (%v)", err)
	}
	if again, err := db.OpenIntakeBatch(ctx, chartscan.BatchIntake, "ward-3/box-0001", 0); err != nil || again.ID != next.ID {
		t.Errorf("with no idle limit: %s (%v), want the open batch %s", again.ID, err, next.ID)
	}
}

// TestInboxListenDecodesNotifiedKeys: the keys of MinIO's notification stream (as a
// MinIO that flushes its stream sends them: URL-encoded, one JSON line an event) reach
// the listener decoded, with the prefix and event filter intake asks for.
func TestInboxListenDecodesNotifiedKeys(t *testing.T) {
	keys := []string{"inbox/ward-3/box 1/a+b.pdf", "inbox/ward-3/box-0001/ü.pdf"}
	asked := make(chan url.Values, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, k := range keys {
			fmt.Fprintf(w, `{"Records":[{"eventName":"s3:ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"scans"},"object":{"key":%q,"size":7}}}]}`+"\n", url.QueryEscape(k))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	mc, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{Creds: credentials.NewStaticV4("a", "b", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	inbox := &Inbox{mc: mc, Bucket: "scans", Prefix: "inbox/"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	err = inbox.Listen(ctx, func(key string) {
		if got = append(got, key); len(got) == len(keys) {
			cancel()
		}
	})
	if err != nil || strings.Join(got, "|") != strings.Join(keys, "|") {
		t.Errorf("Listen: %q, %v; want %q", got, err, keys)
	}
	q := <-asked
	if q.Get("prefix") != "inbox/" || q.Get("events") != "s3:ObjectCreated:*" {
		t.Errorf("listened with %v, want prefix inbox/ and s3:ObjectCreated:*", q)
	}
}
