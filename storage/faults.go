package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/minio/minio-go/v7"
)

// Transient reports whether err is a fault of PostgreSQL, MinIO or the network between
// that clears by itself — a connection refused, reset or timed out, a server shutting
// down or starting up, a 5xx, a deadlock or serialization failure — rather than a
// problem with what was asked. Work that fails with one is tried again later, never
// given up on.
func Transient(err error) bool {
	// A caller's deadline or cancellation is not the stores' fault (and context errors
	// are net.Errors too).
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientSQLState(pgErr.Code)
	}
	var s3 minio.ErrorResponse
	if errors.As(err, &s3) {
		return s3.StatusCode >= 500 || s3.StatusCode == 429 || s3.StatusCode == 408 ||
			s3.Code == "SlowDown" || s3.Code == "RequestTimeout" || strings.HasPrefix(s3.Code, "XMinioServerNotInitialized")
	}
	return networkFault(err) || pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed)
}

// transientSQLState is true of the SQLSTATE classes a server in trouble raises: a
// connection exception (08), insufficient resources (53), an operator intervention such
// as a shutdown or a server still starting (57P0x), a system error (58), and the
// serialization failures and deadlocks a retry resolves (40001, 40P01).
func transientSQLState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "53"), strings.HasPrefix(code, "58"),
		strings.HasPrefix(code, "57P0"), code == "40001", code == "40P01":
		return true
	}
	return false
}

// networkFault reports whether err is a failure to reach a server or a connection that
// broke: any net.Error (refused, reset, timed out, no route, a name that did not
// resolve), a broken pipe, or a stream cut short.
func networkFault(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN, io.ErrUnexpectedEOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
