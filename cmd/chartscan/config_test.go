package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chartscan/chartscan/ocr"
)

func TestLoadConfigDefaultsMatchLocalStack(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.DatabaseURL, "postgres://chartscan:chartscan@127.0.0.1:5440/chartscan?sslmode=disable"; got != want {
		t.Errorf("DatabaseURL = %q, want %q", got, want)
	}
	if got, want := c.Limits, ocr.DefaultLimits; !cmp.Equal(got, want) {
		t.Errorf("Limits: %s", cmp.Diff(want, got))
	}
	if c.Concurrency < 1 {
		t.Errorf("Concurrency = %d, want ≥ 1", c.Concurrency)
	}
}

func TestLoadConfigNamesTheBadVariable(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"CHARTSCAN_CONCURRENCY", "0"},
		{"CHARTSCAN_MAX_PIXELS", "lots"},
		{"MINIO_USE_SSL", "maybe"},
		{"DATABASE_URL", "mysql://x"},
		{"MINIO_ENDPOINT", "http://127.0.0.1:9000"},
		{"CHARTSCAN_LOG_LEVEL", "chatty"},
		{"CHARTSCAN_HTTP_ADDR", "8080"},
	} {
		_, err := loadConfig(func(k string) string {
			if k == tc.name {
				return tc.value
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%s: err = %v, want one naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}

func TestLoadConfigReadsValues(t *testing.T) {
	env := map[string]string{"CHARTSCAN_CONCURRENCY": "3", "CHARTSCAN_MAX_PIXELS": "1_000_000", "MINIO_BUCKET": "scans"}
	c, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Concurrency != 3 || c.Limits.MaxPixels != 1_000_000 || c.MinIOBucket != "scans" {
		t.Errorf("got %+v", c)
	}
}
