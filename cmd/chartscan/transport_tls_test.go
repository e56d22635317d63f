package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/storage"
)

// TestLocalStackWithTLS runs chartscan's real path with TLS on every connection, against
// servers of the test's own that speak nothing else (issue 10, item 8): migrate as the
// owner, records import and ingest as the CLI's role, a worker as its role filing a
// sample chart, and serve as its role answering over HTTPS — each PostgreSQL URL with
// sslmode=verify-full and the test's CA, Redis by rediss:// and MinIO by HTTPS, both
// with that CA. Then a cleartext connection to each server is refused, and so is TLS
// without the CA: the CA settings are what verify.
func TestLocalStackWithTLS(t *testing.T) {
	start := time.Now()
	ts := stacktest.NewTLS(t)
	t.Logf("TLS stack up in %v", time.Since(start).Round(time.Millisecond))
	env := append(os.Environ(), ts.Vars()...)
	env = append(env, "OMP_THREAD_LIMIT=1", "CHARTSCAN_LOG_LEVEL=debug", "CHARTSCAN_CONCURRENCY=2",
		"CHARTSCAN_SERVE_DATABASE_URL="+ts.RoleURL(storage.RoleServe),
		"CHARTSCAN_WORKER_DATABASE_URL="+ts.RoleURL(storage.RoleWorker),
		"CHARTSCAN_CLI_DATABASE_URL="+ts.RoleURL(storage.RoleCLI),
		"CHARTSCAN_TLS_CERT="+ts.CertFile, "CHARTSCAN_TLS_KEY="+ts.KeyFile)
	s := &stack{t: t, env: env, logs: &syncBuffer{}}
	for _, role := range storage.Roles {
		if u := ts.RoleURL(role); !strings.Contains(u, "sslmode=verify-full") || !strings.Contains(u, "sslrootcert=") {
			t.Fatalf("%s's URL lost its TLS settings: %s", role, u)
		}
	}

	s.mustRun("migrate")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	out, errs, code := s.run("ingest", "--wait", "../../testdata/charts/chart-003.pdf")
	if code != 0 {
		t.Fatalf("ingest --wait over TLS: exit %d\n%s\n%s", code, errs, s.logs)
	}
	batch := strings.TrimSpace(out)
	rows := s.export("--batch", batch)
	if len(rows) != 2 || rows[0].Status != "auto" || rows[0].MRN == nil {
		t.Errorf("chart-003 over TLS: %+v, want 2 pages, the first auto-filed", rows)
	}
	// Each component connected as its own role, and over TLS: PostgreSQL says so.
	super, err := pgx.Connect(context.Background(), ts.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer super.Close(context.Background())

	srv := s.startServe()
	if !strings.HasPrefix(srv.url, "https://") {
		t.Fatalf("serve with CHARTSCAN_TLS_CERT printed %q, want an https:// URL", srv.url)
	}
	pinned := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ts.CA}}}
	resp, err := pinned.Get(srv.url + "/api/v1/health")
	if err != nil {
		t.Fatalf("health over HTTPS with the CA pinned: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var health struct {
		Status string
		Checks map[string]string
	}
	json.Unmarshal(body, &health)
	if resp.StatusCode != http.StatusOK || health.Status != "ok" || len(health.Checks) != 3 {
		t.Errorf("health: %d %s, want 200 with postgres, redis and minio ok", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("health answered without TLS 1.2+: %+v", resp.TLS)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("Strict-Transport-Security %q over HTTPS, want max-age=…", h)
	}
	resp, err = pinned.Get(srv.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if !c.Secure || !c.HttpOnly {
			t.Errorf("cookie %s: Secure %v, HttpOnly %v; want both", c.Name, c.Secure, c.HttpOnly)
		}
	}
	var sslConns int
	if err := super.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
		WHERE usename = ANY($1) AND ssl`, storage.Roles).Scan(&sslConns); err != nil || sslConns == 0 {
		t.Errorf("TLS connections of the component roles: %d (%v), want some", sslConns, err)
	}
	var plainConns int
	super.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
		WHERE backend_type = 'client backend' AND NOT ssl`).Scan(&plainConns)
	if plainConns != 0 {
		t.Errorf("%d cleartext connections to PostgreSQL, want none", plainConns)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("serve refuses old TLS and unverified clients", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  *tls.Config
			want string // in the error: who refused, and why
		}{
			{"TLS 1.1", &tls.Config{RootCAs: ts.CA, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "remote error: tls: protocol version"},
			{"without the CA", &tls.Config{}, "unknown authority"},
		} {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc.cfg}}
			resp, err := c.Get(srv.url + "/api/v1/health")
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: answered %s, want the handshake to fail", tc.name, resp.Status)
			} else if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			}
		}
	})
	t.Run("cleartext refused", func(t *testing.T) {
		plain := &http.Client{Timeout: 5 * time.Second}
		for name, u := range map[string]string{"serve": "http://" + strings.TrimPrefix(srv.url, "https://") + "/api/v1/health",
			"minio": "http://" + ts.MinIO + "/minio/health/live"} {
			resp, err := plain.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("%s over plain HTTP: %s, want a refusal", name, resp.Status)
				}
			}
		}
		rc := redis.NewClient(&redis.Options{Addr: ts.RedisAddr, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
		defer rc.Close()
		if err := rc.Ping(ctx).Err(); err == nil {
			t.Error("redis answered a cleartext PING")
		} else if h := tlsHint(err, "REDIS_URL"); h == "" {
			t.Errorf("redis in cleartext: %v, and no hint to turn TLS on", err)
		} else {
			t.Logf("redis in cleartext: %v%s", err, h)
		}
		pu, _ := url.Parse(ts.DatabaseURL)
		pu.RawQuery = "sslmode=disable"
		if c, err := pgx.Connect(ctx, pu.String()); err == nil {
			c.Close(ctx)
			t.Error("postgres admitted a cleartext connection")
		}
		// chartscan itself, pointed at PostgreSQL without TLS, says what to add.
		bad := &stack{t: t, env: append(append([]string{}, env...), "DATABASE_URL="+pu.String()), logs: s.logs}
		if _, errs, code := bad.run("migrate"); code == 0 || !strings.Contains(errs, "sslmode=verify-full") {
			t.Errorf("chartscan migrate with sslmode=disable: exit %d, %q; want a refusal naming sslmode=verify-full", code, errs)
		} else {
			t.Logf("chartscan migrate with sslmode=disable: %s", errs)
		}
		_, err := storage.NewObjects(ctx, storage.ObjectsConfig{Endpoint: ts.MinIO, AccessKey: ts.AccessKey, SecretKey: ts.SecretKey, Bucket: ts.Bucket})
		if err == nil {
			t.Error("minio answered over plain HTTP")
		} else if h := tlsHint(err, "MINIO_USE_SSL"); h == "" {
			t.Errorf("minio over plain HTTP: %v, and no hint to turn TLS on", err)
		} else {
			t.Logf("minio over plain HTTP: %v%s", err, h)
		}
	})
	t.Run("TLS without the CA refused", func(t *testing.T) {
		getenv := func(k string) string { return s.getenv(k) }
		cfg, err := loadConfig(func(k string) string {
			if k == "CHARTSCAN_REDIS_CA" || k == "CHARTSCAN_MINIO_CA" {
				return ""
			}
			return getenv(k)
		})
		if err != nil {
			t.Fatal(err)
		}
		opt, err := redisOptions(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc := redis.NewClient(opt)
		defer rc.Close()
		if err := rc.Ping(ctx).Err(); err == nil {
			t.Error("rediss:// without CHARTSCAN_REDIS_CA verified the test CA's certificate")
		} else if h := tlsHint(err, "CHARTSCAN_REDIS_CA"); !strings.Contains(h, "CHARTSCAN_REDIS_CA") {
			t.Errorf("redis without the CA: %v, hint %q; want one naming CHARTSCAN_REDIS_CA", err, h)
		}
		_, err = storage.NewObjects(ctx, storage.ObjectsConfig{Endpoint: ts.MinIO, AccessKey: ts.AccessKey, SecretKey: ts.SecretKey,
			Bucket: ts.Bucket, UseSSL: true})
		if err == nil {
			t.Error("MinIO over HTTPS without CHARTSCAN_MINIO_CA verified the test CA's certificate")
		} else if h := tlsHint(err, "CHARTSCAN_MINIO_CA"); !strings.Contains(h, "CHARTSCAN_MINIO_CA") {
			t.Errorf("minio without the CA: %v, hint %q; want one naming CHARTSCAN_MINIO_CA", err, h)
		}
	})
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}
