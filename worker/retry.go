package worker

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// maxRetry is every task's retry budget. With RetryDelay's backoff it spans about three
// hours, so an outage of Redis, MinIO or PostgreSQL — a restart, a failover, a night's
// maintenance window — is waited out: a store fault never fails a page (see settle), and
// a task that waits longer still is put back by reconcile. A worker killed under a task
// costs an attempt too, so a page that kills every worker it meets is given up on only
// after as many deaths.
const maxRetry = 40

// RetryDelay is the backoff between a task's attempts, for asynq.Config.RetryDelayFunc:
// 2 s doubling to 5 minutes, less up to a fifth at random so the tasks an outage stopped
// do not all come back in the same second.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := min(time.Duration(1<<min(n+1, 9))*time.Second, 5*time.Minute)
	return d - rand.N(d/5+1)
}

// Transient reports whether err is a fault of the network, Redis or PostgreSQL that
// clears by itself: any net.Error (a connection refused, reset or timed out), a
// connection cut short, a Redis still loading its data or a full connection pool, a
// PostgreSQL shutting down or starting up. MinIO's (a 503) are storage.Transient's,
// which a Worker takes in its Config.
func Transient(err error) bool {
	// A task's own deadline or cancellation is not the network's: a page that takes
	// Tesseract past its task's timeout must not be tried for ever (context errors are
	// net.Errors too).
	if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
		io.ErrUnexpectedEOF, net.ErrClosed, redis.ErrPoolTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	// PostgreSQL's, for the handlers that see no storage.Transient: a connection
	// exception, insufficient resources, a shutdown or start-up, a system error, a
	// serialization failure or deadlock.
	var sql interface{ SQLState() string }
	if errors.As(err, &sql) {
		c := sql.SQLState()
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "58") ||
			strings.HasPrefix(c, "57P0") || c == "40001" || c == "40P01"
	}
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		return true
	}
	for _, prefix := range []string{"LOADING", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN", "READONLY", "BUSY"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	return false
}
