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

// maxRetry is every task's budget of failed attempts. A store fault is no failure
// (IsFailure): a task that meets one waits and is tried again, however long the outage,
// without spending its budget. What spends it is a worker that died under the task (its
// lease expired: killed, or crashed by the page) and an error that is neither bad input
// nor a store fault; so a page that kills every worker it meets is given up on after
// this many deaths, and the rest of a worker restart's or a Redis outage's lost leases
// are well within it.
const maxRetry = 8

// IsFailure reports whether err spends a task's retry budget, for
// asynq.Config.IsFailure: every error but a store fault (see transient).
func (w *Worker) IsFailure(err error) bool { return err != nil && !w.transient(err) }

// RetryDelay is the wait before a task's next attempt, for asynq.Config.RetryDelayFunc.
// After a failure, 2 s doubling to 5 minutes; after a store fault, 5 to 30 s, at random
// so the tasks an outage stopped come back spread out rather than together, and soon
// after the store does. Either is less up to a fifth at random.
func (w *Worker) RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	d := min(time.Duration(1<<min(n+1, 9))*time.Second, 5*time.Minute)
	if err != nil && w.transient(err) {
		d = 5*time.Second + rand.N(25*time.Second)
	}
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
