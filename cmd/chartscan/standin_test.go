package main

import (
	"context"
	"testing"
	"time"
)

// The stand-in reader is chosen only by an explicit CHARTSCAN_READER=standin:DELAY.
func TestReaderSettingIsTesseractUnlessStandinIsExplicit(t *testing.T) {
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if standin, _, err := parseReader(cfg.Reader); standin || err != nil {
		t.Fatalf("default reader: standin %v, error %v; want Tesseract", standin, err)
	}
	for _, bad := range []string{"standin", "standin:", "standin:-1s", "standin:1h", "stand-in:1s", "fake", "STANDIN:1s"} {
		if _, err := loadConfig(func(k string) string {
			if k == "CHARTSCAN_READER" {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("CHARTSCAN_READER=%q accepted", bad)
		}
	}
	standin, d, err := parseReader("standin:20ms")
	if !standin || d != 20*time.Millisecond || err != nil {
		t.Fatalf("standin:20ms: %v %v %v", standin, d, err)
	}
	start := time.Now()
	res, err := standinReader{delay: d}.Read(context.Background(), []byte{1}, 300)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < d || len(res.Words) == 0 || res.Quality != 0 || !res.LittleText {
		t.Fatalf("stand-in read: %v words, quality %v, little text %v, took %v", len(res.Words), res.Quality, res.LittleText, time.Since(start))
	}
}
