package web

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chartscan/chartscan"
)

// Limits bound what one request, or one user, may cost the server (issue 10, item 9).
// A zero field takes its default from DefaultLimits.
type Limits struct {
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the http.Server's.
	// A request whose body or response is long (an upload, an export, an event stream)
	// gets rolling deadlines instead: each read or write that moves gives it another
	// ReadTimeout or WriteTimeout, so a transfer that keeps moving lasts as long as it
	// needs and one that stalls is cut.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// DecodeBytes caps the memory a page image may decode to for a thumbnail or a
	// conversion: its header's dimensions are checked before any pixel is decoded.
	DecodeBytes int64
	// StreamsPerUser is how many live event streams one user may hold open at once.
	StreamsPerUser int
	// SpoolBytes caps the bytes of uploads of unknown length spooled to disk at once,
	// across all users.
	SpoolBytes int64
}

// DefaultLimits are the limits of a Server whose Config leaves them zero.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
	DecodeBytes: 256 << 20, StreamsPerUser: 8, SpoolBytes: 4 << 30,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	set(&l.ReadTimeout, d.ReadTimeout)
	set(&l.WriteTimeout, d.WriteTimeout)
	set(&l.IdleTimeout, d.IdleTimeout)
	if l.DecodeBytes <= 0 {
		l.DecodeBytes = d.DecodeBytes
	}
	if l.StreamsPerUser <= 0 {
		l.StreamsPerUser = d.StreamsPerUser
	}
	if l.SpoolBytes <= 0 {
		l.SpoolBytes = d.SpoolBytes
	}
	return l
}

// HTTPServer returns an http.Server for s with its timeouts; the caller sets Addr or
// serves on a listener, and sets TLS if it wants it.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		WriteTimeout:      s.limits.WriteTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
	}
}

// rolling gives a long request rolling deadlines: its body's reads and its response's
// writes each push the connection's deadline d further (ReadTimeout, WriteTimeout), in
// place of the server's fixed ones. It returns the writer to use.
func (s *Server) rolling(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	rc := http.NewResponseController(w)
	now := time.Now()
	rc.SetReadDeadline(now.Add(s.limits.ReadTimeout))
	rc.SetWriteDeadline(now.Add(s.limits.WriteTimeout))
	if r.Body != nil {
		r.Body = &rollingBody{ReadCloser: r.Body, rc: rc, read: s.limits.ReadTimeout, write: s.limits.WriteTimeout}
	}
	return &rollingWriter{ResponseWriter: w, rc: rc, read: s.limits.ReadTimeout, write: s.limits.WriteTimeout}
}

// streaming exempts an event stream from the read deadline (the server reads only to see
// the client leave, which ends the stream) and gives its writes rolling deadlines: a
// client that stops reading is cut after WriteTimeout.
func (s *Server) streaming(w http.ResponseWriter) http.ResponseWriter {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
	return &rollingWriter{ResponseWriter: w, rc: rc, write: s.limits.WriteTimeout}
}

type rollingBody struct {
	io.ReadCloser
	rc          *http.ResponseController
	read, write time.Duration
	last        time.Time
}

func (b *rollingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// The response is written after the body is read: its deadline moves too. Now and
	// then is enough; a deadline is a system call.
	if now := time.Now(); n > 0 && now.Sub(b.last) > every(b.read) {
		b.last = now
		b.rc.SetReadDeadline(now.Add(b.read))
		b.rc.SetWriteDeadline(now.Add(b.write))
	}
	return n, err
}

// every is how often a rolling deadline d is moved on: often enough that it never
// passes while data moves.
func every(d time.Duration) time.Duration { return min(time.Second, d/4) }

type rollingWriter struct {
	http.ResponseWriter
	rc          *http.ResponseController
	read, write time.Duration
	last        time.Time
}

// Write moves the read deadline too: after the request, the server reads only to see
// the client leave, and a read deadline that passes ends the request's context.
func (w *rollingWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(w.last) > every(w.write) {
		w.last = now
		w.rc.SetWriteDeadline(now.Add(w.write))
		if w.read > 0 {
			w.rc.SetReadDeadline(now.Add(w.read))
		}
	}
	return w.ResponseWriter.Write(p)
}

func (w *rollingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// streams counts each user's open event streams.
type streams struct {
	mu   sync.Mutex
	open map[int64]int
}

// acquireStream admits one more event stream for user id, or refuses it when the user
// holds max already; release frees it.
func (st *streams) acquire(id int64, max int) (release func(), err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.open == nil {
		st.open = map[int64]int{}
	}
	if st.open[id] >= max {
		return nil, chartscan.Errorf(eRateLimited, "you have %d live views open already; close one (another tab or window) and reload", max)
	}
	st.open[id]++
	return func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.open[id]--; st.open[id] <= 0 {
			delete(st.open, id)
		}
	}, nil
}

// errSpoolFull is the error of an upload of unknown length refused for want of room.
var errSpoolFull = errors.New("upload spool full")

// spool is the quota of bytes spooled to disk at once.
type spool struct {
	used atomic.Int64
}

// reader returns body counted against the quota of max bytes: a read that would take
// the spool past it fails with errSpoolFull. release gives the bytes back (the spooled
// file is gone).
func (sp *spool) reader(body io.Reader, max int64) *spoolReader {
	return &spoolReader{r: body, sp: sp, max: max}
}

type spoolReader struct {
	r   io.Reader
	sp  *spool
	max int64
	n   int64
}

func (q *spoolReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	if n > 0 {
		if q.sp.used.Add(int64(n)) > q.max {
			q.sp.used.Add(-int64(n))
			return 0, errSpoolFull
		}
		q.n += int64(n)
	}
	return n, err
}

func (q *spoolReader) release() { q.sp.used.Add(-q.n); q.n = 0 }

// decodeCost is how many bytes decoding an image of cfg takes, from its header.
func decodeCost(cfg image.Config) int64 {
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	case color.Gray16Model, color.Alpha16Model:
		bpp = 2
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		bpp = 1
	}
	return int64(cfg.Width) * int64(cfg.Height) * bpp
}

// checkDecodable refuses an image whose header says it would decode to more than max
// bytes, before anything is decoded.
func checkDecodable(cfg image.Config, max int64) error {
	if cfg.Width <= 0 || cfg.Height <= 0 || decodeCost(cfg) > max {
		return &chartscan.Error{Code: eTooLarge, Message: fmt.Sprintf("the page image is too large to show here (%d×%d pixels)", cfg.Width, cfg.Height)}
	}
	return nil
}
