package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/ocr"
)

// The stand-in reader is for benchmarks and tests only (make bench-scale): with
// CHARTSCAN_READER=standin:DELAY a worker reads no page. Each read waits DELAY, as a
// Tesseract slot would be busy, and returns the same few words — a header naming it a
// stand-in, and an MRN, name and birth date of nobody (MRN 000000000, STANDIN BENCHMARK,
// 01/01/1900) — so split, store, extract, the fan-in and the match do their real work
// against the real Redis, PostgreSQL and MinIO while OCR costs no CPU. Its reads score
// quality 0 with little text, and the worker warns at start that pages are not read.
// It is never chosen by default: CHARTSCAN_READER unset (or "tesseract") is Tesseract.
const standinPrefix = "standin:"

// parseReader checks a CHARTSCAN_READER value: "" or "tesseract", or standin:DELAY with
// DELAY a duration from 0 to 10 s.
func parseReader(v string) (standin bool, delay time.Duration, err error) {
	switch {
	case v == "" || v == "tesseract":
		return false, 0, nil
	case strings.HasPrefix(v, standinPrefix):
		d, err := time.ParseDuration(strings.TrimPrefix(v, standinPrefix))
		if err != nil || d < 0 || d > 10*time.Second {
			return false, 0, fmt.Errorf("want standin:DELAY with DELAY from 0s to 10s, e.g. standin:500ms")
		}
		return true, d, nil
	}
	return false, 0, fmt.Errorf("want tesseract, or standin:DELAY (benchmarks only)")
}

// standinReader is the benchmark's worker.Reader (see above).
type standinReader struct{ delay time.Duration }

// standinLines are the canned page's lines, each a list of words.
var standinLines = [][]string{
	{"CHARTSCAN", "STAND-IN", "READER", "-", "BENCHMARK", "PAGE,", "NOT", "READ"},
	{"Patient", "Name:", "BENCHMARK,", "STANDIN"},
	{"MRN:", "000000000"},
	{"DOB:", "01/01/1900"},
	{"This", "page", "was", "not", "read:", "the", "stand-in", "reader", "returns", "these", "words", "for", "every", "page."},
}

func (r standinReader) Read(ctx context.Context, img []byte, dpi int) (ocr.Result, error) {
	start := time.Now()
	if len(img) == 0 {
		return ocr.Result{}, chartscan.Errorf(chartscan.EInvalid, "empty page image")
	}
	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ocr.Result{}, ctx.Err()
		case <-t.C:
		}
	}
	if dpi <= 0 {
		dpi = 300
	}
	var words []chartscan.Word
	var text strings.Builder
	for l, line := range standinLines {
		x := dpi / 2
		y := dpi/2 + l*dpi/4
		for _, t := range line {
			w := len(t) * dpi / 12
			words = append(words, chartscan.Word{Text: t, Conf: 90, Block: 1, Line: l + 1,
				Box: chartscan.Box{X0: x, Y0: y, X1: x + w, Y1: y + dpi/8}})
			x += w + dpi/12
		}
		text.WriteString(strings.Join(line, " "))
		text.WriteByte('\n')
	}
	return ocr.Result{Words: words, Text: text.String(), Confidence: 0, Quality: 0, LittleText: true,
		Stages: map[string]time.Duration{standinStage: time.Since(start)}}, nil
}

// standinStage is the stand-in's time in chartscan_stage_seconds (its delay), in place of
// Tesseract's stages.
const standinStage = "standin"

func (standinReader) Close() {}
