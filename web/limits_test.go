package web

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// The resource limits of issue 10, item 9, against the server with an in-memory store.

const testBatch = "6f1c2d3e-0000-4000-8000-000000000001"

// limitsStore adds a page to fakeStore.
type limitsStore struct {
	*fakeStore
}

func (f limitsStore) PageDetail(_ context.Context, doc string, n int) (storage.PageDetail, error) {
	var d storage.PageDetail
	d.DocumentID, d.Number, d.ImageKey, d.ImageType = doc, n, "pages/bomb.png", "image/png"
	return d, nil
}

// bytesObjects serves one object from memory.
type bytesObjects []byte

func (b bytesObjects) Get(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b)), nil
}

// bombPNG is the start of a 16-bit RGBA PNG of 10000×10000 pixels: 800 MB decoded, under
// a hundred bytes stored.
func bombPNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 10000)
	binary.BigEndian.PutUint32(ihdr[4:], 10000)
	ihdr[8], ihdr[9] = 16, 6 // 16 bits, RGBA
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	// The start of its pixels: a decoder allocates the image when it reaches them.
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 1000))
	zw.Close()
	binary.Write(&b, binary.BigEndian, uint32(z.Len()))
	chunk = append([]byte("IDAT"), z.Bytes()...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func withToken(r *http.Request) *http.Request {
	r.Header.Set("Authorization", "Bearer tok")
	return r
}

func tokenUser(t *testing.T, f *fakeStore, role string) {
	f.addUser(t, 1, "u1", role, "x-password-1")
	f.mu.Lock()
	f.tokens[tokenHash("tok")] = 1
	f.mu.Unlock()
}

// TestPageImageHeaderCheckedBeforeDecoding: a thumbnail of a tiny PNG whose header claims
// 800 MB of pixels is refused from the header, without the allocation. Before, the
// decoder allocated the 800 MB image first.
func TestPageImageHeaderCheckedBeforeDecoding(t *testing.T) {
	f := newFakeStore()
	tokenUser(t, f, RoleReviewer)
	s, err := New(Config{Store: limitsStore{f}, Objects: bytesObjects(bombPNG())})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, withToken(httptest.NewRequest("GET", "/api/v1/pages/"+testBatch+"/1/image?width=200", nil)))
	runtime.ReadMemStats(&after)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "too large to show") {
		t.Errorf("thumbnail of an 800 MB PNG: %d %s, want 413", rec.Code, rec.Body)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Errorf("the refusal allocated %d MB, want it refused from the header", grew>>20)
	}
}

// TestEventStreamsPerUserCapped: a user holds at most StreamsPerUser live streams; one
// more is refused (429) until one closes.
func TestEventStreamsPerUserCapped(t *testing.T) {
	f := newFakeStore()
	tokenUser(t, f, RoleClerk)
	s := newFakeServer(t, f, Config{Limits: Limits{StreamsPerUser: 2}})
	open := func() (context.CancelFunc, *httptest.ResponseRecorder, chan struct{}) {
		ctx, cancel := context.WithCancel(context.Background())
		r := withToken(httptest.NewRequest("GET", "/api/v1/batches/"+testBatch+"/events", nil).WithContext(ctx))
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { s.ServeHTTP(rec, r); close(done) }()
		return cancel, rec, done
	}
	var cancels []context.CancelFunc
	var dones []chan struct{}
	for range 2 {
		c, _, d := open()
		cancels, dones = append(cancels, c), append(dones, d)
	}
	time.Sleep(200 * time.Millisecond)
	_, rec, done := open()
	<-done
	if rec.Code != http.StatusTooManyRequests {
		t.Errorf("a third stream: %d %s, want 429", rec.Code, rec.Body)
	}
	cancels[0]()
	<-dones[0]
	c, rec, done := open()
	time.Sleep(200 * time.Millisecond)
	c()
	<-done
	if rec.Code != http.StatusOK {
		t.Errorf("a stream after one closed: %d %s, want 200", rec.Code, rec.Body)
	}
	cancels[1]()
	<-dones[1]
	if n := len(s.streams.open); n != 0 {
		t.Errorf("%d users counted with open streams after all closed", n)
	}
}

// discardIngester takes any file.
type discardIngester struct{}

func (discardIngester) Ingest(_ context.Context, _, _ string, r io.Reader, _ int64) (chartscan.Document, bool, error) {
	_, err := io.Copy(io.Discard, r)
	return chartscan.Document{ID: "d"}, true, err
}

// TestUploadSpoolQuota: uploads of unknown length are spooled to disk only up to
// SpoolBytes at once; past it the file is refused with what to do, and the bytes are
// given back. A file sent with its size is streamed, not spooled, and is not refused.
func TestUploadSpoolQuota(t *testing.T) {
	f := newFakeStore()
	tokenUser(t, f, RoleClerk)
	s := newFakeServer(t, f, Config{Ingest: discardIngester{}, Limits: Limits{SpoolBytes: 1000}})
	body := bytes.Repeat([]byte("x"), 5000)
	upload := func(length int64) *httptest.ResponseRecorder {
		r := withToken(httptest.NewRequest("POST", "/api/v1/batches/"+testBatch+"/files?name=a.pdf", bytes.NewReader(body)))
		r.ContentLength = length
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	if rec := upload(-1); rec.Code != http.StatusMultiStatus || !strings.Contains(rec.Body.String(), "too many uploads of unknown size") {
		t.Errorf("5000 bytes of unknown length, quota 1000: %d %s", rec.Code, rec.Body)
	}
	if n := s.spool.used.Load(); n != 0 {
		t.Errorf("%d bytes still counted as spooled after the refusal", n)
	}
	if rec := upload(int64(len(body))); rec.Code != http.StatusCreated {
		t.Errorf("5000 bytes with their size: %d %s, want 201", rec.Code, rec.Body)
	}
	s.limits.SpoolBytes = 10_000
	if rec := upload(-1); rec.Code != http.StatusCreated {
		t.Errorf("5000 bytes of unknown length, quota 10000: %d %s, want 201", rec.Code, rec.Body)
	}
	if n := s.spool.used.Load(); n != 0 {
		t.Errorf("%d bytes still counted as spooled after the upload", n)
	}
}

// TestServerTimeouts runs the server with short timeouts: a client that sends half a
// header, or stalls in the middle of a body, is cut; an upload that keeps moving lasts
// longer than ReadTimeout; an event stream outlives the read and write timeouts.
func TestServerTimeouts(t *testing.T) {
	f := newFakeStore()
	tokenUser(t, f, RoleClerk)
	s := newFakeServer(t, f, Config{Ingest: discardIngester{},
		Limits: Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, WriteTimeout: 400 * time.Millisecond}})
	ts := httptest.NewUnstartedServer(s)
	ts.Config = s.HTTPServer()
	ts.Start()
	defer ts.Close()
	addr := ts.Listener.Addr().String()

	closedWithin := func(what string, c net.Conn, d time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(d + 2*time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the connection is still open after %v", what, time.Since(start))
		}
	}
	// Half a header.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"))
	closedWithin("half a header", c, 200*time.Millisecond)
	c.Close()

	// A body that stalls.
	c, _ = net.Dial("tcp", addr)
	c.Write([]byte("POST /api/v1/batches/" + testBatch + "/files?name=a.pdf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok\r\nContent-Length: 1000\r\n\r\n0123456789"))
	closedWithin("a stalled body", c, 400*time.Millisecond)
	c.Close()

	// A body that moves, for four times ReadTimeout.
	pr, pw := io.Pipe()
	go func() {
		for range 16 {
			time.Sleep(100 * time.Millisecond)
			pw.Write([]byte("0123456789"))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", ts.URL+"/api/v1/batches/"+testBatch+"/files?name=a.pdf", pr)
	req.ContentLength = 160
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("an upload that keeps moving for 1.6 s: %v", err)
	} else {
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("an upload that keeps moving for 1.6 s: %d", resp.StatusCode)
		}
		resp.Body.Close()
	}

	// An event stream: its first event, then a keep-alive 3 s later (poll), well past
	// the read and write timeouts.
	req, _ = http.NewRequest("GET", ts.URL+"/api/v1/batches/"+testBatch+"/events", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(poll + 2*time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the event stream ended before its first keep-alive")
			}
			if strings.HasPrefix(l, ": keep-alive") {
				return
			}
		case <-deadline:
			t.Fatal("no keep-alive on the event stream")
		}
	}
}
