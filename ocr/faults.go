package ocr

/*
#include <unistd.h>

// A real crash and a real hang in C, for the fault tests: what Go's recover cannot catch
// and what only a wall-clock limit ends.
static void cs_fault_crash(void) { volatile int *p = 0; *p = 42; }
static void cs_fault_hang(void) { for (;;) sleep(1); }
*/
import "C"

import (
	"bytes"
	"fmt"
	"image"
	"strings"
)

// FaultEnv names the environment variable that makes the reader's child process crash or
// hang in C on chosen pages — for fault tests only; never set it in production. Its value
// is a comma-separated list of `crash:WxH` and `hang:WxH`: a page image of W×H pixels
// crashes the reader (a null-pointer write in C, SIGSEGV) or hangs it (a C call that never
// returns). Pages are chosen by size because a test controls a page's size, and its bytes
// change on the way through the split.
const FaultEnv = "CHARTSCAN_FAULT_READER"

type faultSet map[string]string // "WxH" → "crash" or "hang"

func parseFaults(spec string) faultSet {
	f := faultSet{}
	for _, item := range strings.Split(spec, ",") {
		kind, size, ok := strings.Cut(strings.TrimSpace(item), ":")
		if ok && (kind == "crash" || kind == "hang") {
			f[size] = kind
		}
	}
	return f
}

func (f faultSet) inject(img []byte) {
	if len(f) == 0 {
		return
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return
	}
	switch f[fmt.Sprintf("%dx%d", cfg.Width, cfg.Height)] {
	case "crash":
		C.cs_fault_crash()
	case "hang":
		C.cs_fault_hang()
	}
}
