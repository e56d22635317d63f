// Package stacktest gives integration tests their own slice of the real local stack: a
// fresh PostgreSQL database, a fresh MinIO bucket and a Redis database no other test
// process is using. A missing service fails the test; only `go test -short` skips.
package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Env is where a test's stack slice is, as the environment variables chartscan reads.
type Env struct {
	DatabaseURL string
	RedisURL    string
	Bucket      string
	MinIO       string // host:port
	AccessKey   string
	SecretKey   string
}

// RoleURL returns the URL of the test's database for one of the component roles that
// deploy/up.sh creates (storage.RoleWorker, …), with the local stack's password for it
// (deploy/env.sh: the role name with dashes, then "-local").
func (e Env) RoleURL(role string) string {
	u, err := url.Parse(e.DatabaseURL)
	if err != nil {
		return ""
	}
	u.User = url.UserPassword(role, strings.ReplaceAll(role, "_", "-")+"-local")
	return u.String()
}

// Vars returns the slice as NAME=value pairs for a subprocess's environment.
func (e Env) Vars() []string {
	return []string{
		"DATABASE_URL=" + e.DatabaseURL, "REDIS_URL=" + e.RedisURL, "MINIO_BUCKET=" + e.Bucket,
		"MINIO_ENDPOINT=" + e.MinIO, "MINIO_ACCESS_KEY=" + e.AccessKey, "MINIO_SECRET_KEY=" + e.SecretKey,
	}
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func randomName() string {
	b := make([]byte, 5)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// New returns a fresh slice of the stack, torn down when the test ends. Under -short it
// skips; otherwise an unreachable service fails the test with how to start the stack.
func New(t testing.TB) Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the local stack (make test starts it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const hint = " — run `make up` (or `make test`, which starts the stack)"
	e := Env{
		MinIO:     getenv("MINIO_ENDPOINT", "127.0.0.1:9010"),
		AccessKey: getenv("MINIO_ACCESS_KEY", "chartscan"),
		SecretKey: getenv("MINIO_SECRET_KEY", "chartscan-local-secret"),
		Bucket:    "test-" + randomName(),
	}

	if c, err := net.DialTimeout("tcp", e.MinIO, 5*time.Second); err != nil {
		t.Fatalf("minio unreachable at %s: %v%s", e.MinIO, err, hint)
	} else {
		c.Close()
	}

	admin := getenv("DATABASE_URL", "postgres://chartscan:chartscan@127.0.0.1:5440/chartscan?sslmode=disable")
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres unreachable: %v%s", err, hint)
	}
	db := "chartscan_test_" + randomName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		conn.Close(ctx)
		t.Fatalf("create test database: %v", err)
	}
	conn.Close(ctx)
	u, _ := url.Parse(admin)
	u.Path = "/" + db
	e.DatabaseURL = u.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
			c.Close(ctx)
		}
	})

	// Asynq's keys are fixed names, so each test process needs a Redis database of its
	// own: claim a free one of 1–15 with a lease in database 0.
	base := getenv("REDIS_URL", "redis://127.0.0.1:6390/0")
	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opt.DB = 0
	r0 := redis.NewClient(opt)
	defer r0.Close()
	if err := r0.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis unreachable: %v%s", err, hint)
	}
	claim := ""
	for n := 1; n <= 15 && claim == ""; n++ {
		key := fmt.Sprintf("chartscan:testdb:%d", n)
		if ok, _ := r0.SetNX(ctx, key, os.Getpid(), 2*time.Hour).Result(); ok {
			claim = key
			opt.DB = n
		}
	}
	if claim == "" {
		t.Fatal("no free Redis database for the test (1–15 all claimed)")
	}
	rn := redis.NewClient(opt)
	rn.FlushDB(ctx)
	rn.Close()
	ru, _ := url.Parse(base)
	ru.Path = fmt.Sprintf("/%d", opt.DB)
	e.RedisURL = ru.String()
	t.Cleanup(func() {
		o := *opt
		c := redis.NewClient(&o)
		c.FlushDB(context.Background())
		c.Close()
		o.DB = 0
		c0 := redis.NewClient(&o)
		c0.Del(context.Background(), claim)
		c0.Close()
	})
	return e
}
