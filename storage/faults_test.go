package storage

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7"

	"github.com/chartscan/chartscan"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"PostgreSQL shutting down", fmt.Errorf("save ocr: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"PostgreSQL starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"bad date", &pgconn.PgError{Code: "22007"}, false},
		{"connection closed", fmt.Errorf("page: %w", pgconn.ErrConnClosed), true},
		{"MinIO unavailable", fmt.Errorf("get x: %w", minio.ErrorResponse{Code: "XMinioServerNotInitialized", StatusCode: 503}), true},
		{"MinIO internal error", minio.ErrorResponse{Code: "InternalError", StatusCode: 500}, true},
		{"MinIO slow down", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, true},
		{"no such key", fmt.Errorf("get x: %w", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}), false},
		{"access denied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false},
		{"missing object", fmt.Errorf("get x: %w", ErrNoObject), false},
		{"bad input", chartscan.Errorf(chartscan.EInvalid, "no"), false},
		{"a caller's deadline", fmt.Errorf("save: %w", context.DeadlineExceeded), false},
		{"nil", nil, false},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("%s: Transient(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestTransientOfAStoreThatIsDown: what the drivers return when PostgreSQL or MinIO does
// not listen is a transient fault. Needs no service: it dials a port nothing listens on.
func TestTransientOfAStoreThatIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Open(ctx, "postgres://u:p@"+addr+"/db?sslmode=disable&connect_timeout=5"); err == nil || !Transient(err) {
		t.Errorf("PostgreSQL down: Open: %v, transient %v; want a transient error", err, Transient(err))
	}
	_, err = NewObjects(ctx, ObjectsConfig{Endpoint: addr, AccessKey: "a", SecretKey: "b", Bucket: "chartscan"})
	if err == nil || !Transient(err) {
		t.Errorf("MinIO down: NewObjects: %v, transient %v; want a transient error", err, Transient(err))
	}
}
