package ocr

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/chartscan/chartscan"
)

// Isolated is a Reader that reads every page in a child process, one per slot, so that a
// crash in C — a SIGSEGV or abort in Leptonica, Tesseract or zxing, a read that never
// returns, the OOM killer — costs the page being read and nothing else. Go's recover
// cannot catch any of these, and in the worker's own process one poison page would take
// down every slot, then every worker it is retried on.
//
// A child lives for many pages (a Tesseract instance is costly to start) and is replaced
// after it dies. Each read has a wall-clock limit; a child that overruns it is killed. A
// read that ends in the child's death or a kill returns a *CrashError; the caller counts
// such crashes per page and gives up on a page that crashed twice (the worker does).
type Isolated struct {
	slots chan *child
	cfg   IsolatedConfig
}

// IsolatedConfig configures an Isolated reader.
type IsolatedConfig struct {
	Slots int // concurrent reads, one child process each
	// Command returns the command of a new child: one that runs ServeChild on its
	// standard input and output (`chartscan ocr-child`). Isolated sets its standard
	// streams; the child's standard error is the worker's.
	Command func() *exec.Cmd
	// Timeout is the wall-clock limit of one page's read (DefaultReadTimeout when 0). A
	// page takes 1–5 s; only a reader stuck in C comes near the default.
	Timeout time.Duration
	Log     *slog.Logger
}

// DefaultReadTimeout is the wall-clock limit of one page's read.
const DefaultReadTimeout = 3 * time.Minute

// ErrCrashed is what every *CrashError is: the page's read killed the reader or ran out
// of time.
var ErrCrashed = errors.New("the page crashed the reader")

// CrashError is a read that ended with the reader's process dead: a crash in C (Exit
// says how it ended, "signal: segmentation fault"), or a read past the wall-clock limit
// (Stalled), after which the process was killed. No page content is in it.
type CrashError struct {
	Stalled bool
	Exit    string
}

func (e *CrashError) Error() string {
	if e.Stalled {
		return "the page stalled the reader past its time limit; the reader was stopped"
	}
	return "the page crashed the reader (" + e.Exit + ")"
}

// Is makes errors.Is(err, ErrCrashed) true for every CrashError.
func (e *CrashError) Is(target error) bool { return target == ErrCrashed }

// NewIsolated returns an Isolated reader. Children start on the first read of their slot.
func NewIsolated(c IsolatedConfig) *Isolated {
	if c.Slots < 1 {
		c.Slots = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultReadTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	r := &Isolated{slots: make(chan *child, c.Slots), cfg: c}
	for range c.Slots {
		r.slots <- nil
	}
	return r
}

// Close stops every child. Reads must have finished.
func (r *Isolated) Close() {
	for range cap(r.slots) {
		if c := <-r.slots; c != nil {
			c.stop()
		}
	}
}

// childRequest and childResponse are the messages between Isolated and ServeChild, gob
// encoded on the child's standard input and output.
type childRequest struct {
	Image []byte
	DPI   int
}

type childResponse struct {
	Result  Result
	Code    string // chartscan's error code of a failed read, or ""
	Message string // a failed read's error, "" when it succeeded
}

type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	enc   *gob.Encoder
	dec   *gob.Decoder
	exit  chan struct{} // closed once the process has been waited for
	state *os.ProcessState
}

func (r *Isolated) start() (*child, error) {
	cmd := r.cfg.Command()
	cmd.Stderr = os.Stderr
	// The child dies with the worker, whatever kills the worker.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startOnSpawner(cmd); err != nil {
		return nil, fmt.Errorf("start the OCR reader process: %w", err)
	}
	c := &child{cmd: cmd, in: in, enc: gob.NewEncoder(in), dec: gob.NewDecoder(bufio.NewReader(out)), exit: make(chan struct{})}
	go func() {
		// Wait closes out once the process is gone, which ends a read blocked on it.
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exit)
	}()
	return c, nil
}

// stop ends a child that may be stuck anywhere, and waits until it is gone.
func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	<-c.exit
}

// how says how the child ended, without its output.
func (c *child) how() string {
	select {
	case <-c.exit:
	case <-time.After(5 * time.Second):
		// Its output closed but it has not exited: it is no use any more.
		c.stop()
	}
	if c.state == nil {
		return "ended"
	}
	if ws, ok := c.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return c.state.String()
}

// Read reads one page image in a child process; see Engine.Read for what it does.
func (r *Isolated) Read(ctx context.Context, img []byte, dpi int) (Result, error) {
	var c *child
	select {
	case c = <-r.slots:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if c == nil {
		var err error
		if c, err = r.start(); err != nil {
			r.slots <- nil
			return Result{}, err
		}
	}
	type reply struct {
		resp childResponse
		err  error
	}
	done := make(chan reply, 1)
	go func() {
		var rp reply
		if rp.err = c.enc.Encode(childRequest{Image: img, DPI: dpi}); rp.err == nil {
			rp.err = c.dec.Decode(&rp.resp)
		}
		done <- rp
	}()
	limit := time.NewTimer(r.cfg.Timeout)
	defer limit.Stop()
	select {
	case rp := <-done:
		if rp.err != nil {
			how := c.how()
			r.slots <- nil
			r.cfg.Log.Warn("OCR reader process died during a read", "exit", how)
			return Result{}, &CrashError{Exit: how}
		}
		r.slots <- c
		if rp.resp.Message != "" {
			if rp.resp.Code != "" {
				return rp.resp.Result, chartscan.Errorf(rp.resp.Code, "%s", rp.resp.Message)
			}
			return rp.resp.Result, errors.New(rp.resp.Message)
		}
		return rp.resp.Result, nil
	case <-limit.C:
		c.stop()
		<-done
		r.slots <- nil
		r.cfg.Log.Warn("OCR reader process stopped: a read overran its time limit", "limit", r.cfg.Timeout.String())
		return Result{}, &CrashError{Stalled: true}
	case <-ctx.Done():
		// The task is being given back (shutdown): the read is abandoned with its child.
		c.stop()
		<-done
		r.slots <- nil
		return Result{}, ctx.Err()
	}
}

// ServeChild is the child's side of Isolated: it reads page requests from in, reads
// each with e and writes the result to out, until in ends. Anything the C libraries print
// must not reach out, so callers pass a descriptor of their own (ChildStreams).
func ServeChild(in io.Reader, out io.Writer, e *Engine) error {
	dec := gob.NewDecoder(bufio.NewReader(in))
	bw := bufio.NewWriter(out)
	enc := gob.NewEncoder(bw)
	faults := parseFaults(os.Getenv(FaultEnv))
	for {
		var req childRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read a request: %w", err)
		}
		faults.inject(req.Image)
		res, err := e.Read(context.Background(), req.Image, req.DPI)
		resp := childResponse{Result: res}
		if err != nil {
			resp.Message = err.Error()
			if chartscan.ErrorCode(err) == chartscan.EInvalid {
				// Bad input, which fails its page at once: the clerk's sentence.
				resp.Code, resp.Message = chartscan.EInvalid, chartscan.ErrorMessage(err)
			}
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write a reply: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write a reply: %w", err)
		}
	}
}

// ChildStreams returns the standard input and a private copy of the standard output for
// ServeChild, and points descriptor 1 at standard error: Tesseract and Leptonica print
// to standard output now and then, and a stray line there would corrupt the replies.
func ChildStreams() (in io.Reader, out io.Writer, err error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, nil, err
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, nil, err
	}
	return os.Stdin, os.NewFile(uintptr(fd), "replies"), nil
}

// Pdeathsig is sent when the thread that started the child ends, not the process, and
// Go may end threads. Every child is therefore started from one goroutine locked to its
// thread for the life of the process.
var (
	spawnOnce sync.Once
	spawnReq  chan spawn
)

type spawn struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReq = make(chan spawn)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for s := range spawnReq {
				s.done <- s.cmd.Start()
			}
		}()
	})
	s := spawn{cmd: cmd, done: make(chan error, 1)}
	spawnReq <- s
	return <-s.done
}
