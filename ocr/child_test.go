package ocr

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
)

const childTestEnv = "CHARTSCAN_TEST_OCR_CHILD"

// childCommand starts this test binary as a reader child, with faults injected by size.
func childCommand(faults string) func() *exec.Cmd {
	exe, _ := os.Executable()
	return func() *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childTestEnv+"=1", FaultEnv+"="+faults)
		return cmd
	}
}

func blankPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	img.Set(w/2, h/2, color.Gray{0})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A crash in C (SIGSEGV), and a read stuck in C, cost the page being read only: the
// reader reports a CrashError, starts a new child, and reads the next page as if
// nothing had happened — in the same slot, so the crash cannot have been dodged by
// another slot's child.
func TestIsolatedReaderSurvivesACrashAndAHangInC(t *testing.T) {
	page := samplePage(t)
	r := NewIsolated(IsolatedConfig{Slots: 1, Command: childCommand("crash:601x803,hang:603x805"), Timeout: 20 * time.Second})
	defer r.Close()
	ctx := context.Background()

	good, err := r.Read(ctx, page.Data, page.DPI)
	if err != nil || len(good.Words) < 20 {
		t.Fatalf("a good page through the child: %d words, %v", len(good.Words), err)
	}

	_, err = r.Read(ctx, blankPNG(t, 601, 803), 300)
	var crash *CrashError
	if !errors.As(err, &crash) || !errors.Is(err, ErrCrashed) || crash.Stalled {
		t.Fatalf("a page that crashes the reader: err = %v, want a CrashError", err)
	}
	// Go's runtime turns a SIGSEGV in C into a fatal error (exit status 2); without cgo's
	// handler it would be the signal itself.
	if crash.Exit != "exit status 2" && crash.Exit != "signal: segmentation fault" {
		t.Errorf("the crash reads %q, want how the child died", crash.Exit)
	}

	again, err := r.Read(ctx, page.Data, page.DPI)
	if err != nil || again.Text != good.Text {
		t.Fatalf("the page after a crash: %v (same text: %v)", err, again.Text == good.Text)
	}

	r.cfg.Timeout = 3 * time.Second
	start := time.Now()
	_, err = r.Read(ctx, blankPNG(t, 603, 805), 300)
	if !errors.As(err, &crash) || !crash.Stalled {
		t.Fatalf("a page that hangs the reader: err = %v, want a stalled CrashError", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the hung read returned after %v; the limit is 3 s", d)
	}
	r.cfg.Timeout = 20 * time.Second
	if again, err = r.Read(ctx, page.Data, page.DPI); err != nil || again.Text != good.Text {
		t.Fatalf("the page after a hang: %v", err)
	}

	// Bad input is an answer, not a crash: the clerk's sentence comes back whole.
	_, err = r.Read(ctx, []byte("not an image"), 300)
	if errors.Is(err, ErrCrashed) || chartscan.ErrorCode(err) != chartscan.EInvalid {
		t.Fatalf("a damaged image: %v (code %s), want the invalid-input error", err, chartscan.ErrorCode(err))
	}
}

// A cancelled read (the worker giving its task back at shutdown) is not a crash, and
// leaves the slot usable.
func TestIsolatedReaderCancelIsNotACrash(t *testing.T) {
	r := NewIsolated(IsolatedConfig{Slots: 1, Command: childCommand("hang:607x809")})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := r.Read(ctx, blankPNG(t, 607, 809), 300)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrCrashed) {
		t.Fatalf("cancelled read: %v", err)
	}
	if res, err := r.Read(context.Background(), blankPNG(t, 300, 300), 300); err != nil || !res.Blank {
		t.Fatalf("the slot after a cancelled read: blank=%v %v", res.Blank, err)
	}
}
