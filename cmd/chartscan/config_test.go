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

// TestLoadConfigTransportSettings: TLS settings that contradict each other stop every
// command, naming what to change, rather than leave a connection in cleartext; a bad
// value of a setting that may hold a password is not repeated.
func TestLoadConfigTransportSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // in the error; "" for none
	}{
		{map[string]string{"CHARTSCAN_TLS_CERT": "/etc/chartscan/cert.pem"}, "set both"},
		{map[string]string{"CHARTSCAN_TLS_KEY": "/etc/chartscan/key.pem"}, "set both"},
		{map[string]string{"CHARTSCAN_TLS_CERT": "/c.pem", "CHARTSCAN_TLS_KEY": "/k.pem"}, ""},
		{map[string]string{"CHARTSCAN_REDIS_CA": "/ca.pem"}, "use rediss://"},
		{map[string]string{"CHARTSCAN_REDIS_CA": "/ca.pem", "REDIS_URL": "rediss://redis.internal:6380/0"}, ""},
		{map[string]string{"REDIS_URL": "http://redis.internal"}, "REDIS_URL"},
		{map[string]string{"CHARTSCAN_MINIO_CA": "/ca.pem"}, "MINIO_USE_SSL=true"},
		{map[string]string{"CHARTSCAN_MINIO_CA": "/ca.pem", "MINIO_USE_SSL": "true"}, ""},
		{map[string]string{"CHARTSCAN_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7"}, ""},
		{map[string]string{"CHARTSCAN_TRUSTED_PROXIES": "proxy.internal"}, "CHARTSCAN_TRUSTED_PROXIES"},
	} {
		c, err := loadConfig(func(k string) string { return tc.env[k] })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err = %v, want one saying %q", tc.env, err, tc.want)
		case tc.want == "" && tc.env["CHARTSCAN_TRUSTED_PROXIES"] != "" && len(c.TrustedProxies) != 2:
			t.Errorf("trusted proxies %v, want 2", c.TrustedProxies)
		}
	}
	_, err := loadConfig(func(k string) string {
		if k == "REDIS_URL" {
			return "http://:s3cret-password@redis.internal"
		}
		return ""
	})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad REDIS_URL: %v, want an error without the password", err)
	}
}

// TestTransportWarnings: serve and the workers warn of each store reached across a
// network without verified TLS, and of none on loopback or with it; never with a password.
func TestTransportWarnings(t *testing.T) {
	local, _ := loadConfig(func(string) string { return "" })
	if w := transportWarnings(local, local.DatabaseURL); len(w) != 0 {
		t.Errorf("the local stack: %q, want no warning", w)
	}
	remote := map[string]string{"REDIS_URL": "redis://:pw-redis@redis.internal:6379/0", "MINIO_ENDPOINT": "minio.internal:9000",
		"DATABASE_URL": "postgres://u:pw-db@db.internal/chartscan?sslmode=require"}
	c, err := loadConfig(func(k string) string { return remote[k] })
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(transportWarnings(c, c.DatabaseURL), "\n")
	for _, want := range []string{"sslmode=verify-full", "rediss://", "MINIO_USE_SSL=true"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	if strings.Contains(w, "pw-") {
		t.Errorf("warnings repeat a password: %q", w)
	}
	remote = map[string]string{"REDIS_URL": "rediss://redis.internal:6380/0", "MINIO_ENDPOINT": "minio.internal:9000", "MINIO_USE_SSL": "true",
		"DATABASE_URL": "postgres://u:pw@db.internal/chartscan?sslmode=verify-full&sslrootcert=/etc/ca.pem"}
	c, _ = loadConfig(func(k string) string { return remote[k] })
	if w := transportWarnings(c, c.DatabaseURL); len(w) != 0 {
		t.Errorf("every store over verified TLS: %q, want no warning", w)
	}
}
