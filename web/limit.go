package web

import (
	"strings"
	"sync"
	"time"
)

// limiter keeps a token bucket per key ("user:ann", "ip:10.0.0.1", …): an attempt takes a
// token from each of its keys before any work is done, and is refused when one is empty.
// Work that turns out harmless (a right password) gives its tokens back.
//
// It is not x/time/rate: a rate.Reservation can be cancelled only before its time to act,
// which for an attempt let through at once has already passed, so a refund after the
// password check would be lost.
type limiter struct {
	mu      sync.Mutex
	limits  func(key string) bucketLimit
	buckets map[string]*bucket
	max     int              // buckets kept at most; see reserve
	now     func() time.Time // the clock, for tests
}

// bucketLimit is a bucket's size and how long it takes to refill one token.
type bucketLimit struct {
	burst float64
	every time.Duration
}

// bucket is the tokens a key had at a moment; it refills from there.
type bucket struct {
	tokens float64
	at     time.Time
}

func (l bucketLimit) level(b *bucket, now time.Time) float64 {
	return min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.every))
}

func newLimiter(max int, limits func(key string) bucketLimit) *limiter {
	return &limiter{limits: limits, buckets: map[string]*bucket{}, max: max, now: time.Now}
}

// reserve takes a token from every key, or from none and returns false when one of them
// is empty. A key without a bucket has a full one.
//
// Buckets are dropped when they have refilled, since a full bucket is the same as none:
// that is the only eviction, so no flood of other keys can give a drained key its tokens
// back early. If more than max keys are drained at once, a new key is refused until
// some have refilled: only an attack gets there (each drained key took an evaluated
// attempt, and those are bounded), and refusing is the safe way to fail.
func (l *limiter) reserve(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fresh := 0
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			fresh++
			continue
		}
		if l.limits(k).level(b, now) < 1 {
			return false
		}
	}
	if fresh > 0 && len(l.buckets)+fresh > l.max {
		l.sweep(now)
		if len(l.buckets)+fresh > l.max {
			return false
		}
	}
	for _, k := range keys {
		lim := l.limits(k)
		b, ok := l.buckets[k]
		if !ok {
			b = &bucket{tokens: lim.burst, at: now}
			l.buckets[k] = b
		}
		b.tokens, b.at = lim.level(b, now)-1, now
	}
	return true
}

// refund gives back the tokens reserve took.
func (l *limiter) refund(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		b, ok := l.buckets[k]
		if !ok {
			continue
		}
		lim := l.limits(k)
		if b.tokens, b.at = min(lim.burst, lim.level(b, now)+1), now; b.tokens >= lim.burst {
			delete(l.buckets, k)
		}
	}
}

// sweep drops the buckets that have refilled.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		lim := l.limits(k)
		if lim.level(b, now) >= lim.burst {
			delete(l.buckets, k)
		}
	}
}

// len is the number of buckets kept, for tests.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Sign-in limits: five failures per user name, then one per 30 s; twenty per client
// address (many users behind one NAT), then one per 6 s. A bucket refills in at most
// 150 s; at the hash rate signInSlots allow, filling maxLoginBuckets with drained ones
// takes far longer, so the refusal in reserve is never reached by honest traffic.
const maxLoginBuckets = 100_000

func newLoginLimiter() *limiter { return newLimiter(maxLoginBuckets, loginLimits) }

func loginLimits(key string) bucketLimit {
	if strings.HasPrefix(key, "ip:") {
		return bucketLimit{burst: 20, every: 6 * time.Second}
	}
	return bucketLimit{burst: 5, every: 30 * time.Second}
}

// Cover-sheet limits per user: lookups (a clerk preparing charts prints a few a
// minute), and misses (a typo now and then, never a search by guessing).
const maxCoverBuckets = 10_000

func newCoverLimiter() *limiter {
	return newLimiter(maxCoverBuckets, func(key string) bucketLimit {
		if strings.HasPrefix(key, "miss:") {
			return bucketLimit{burst: 10, every: time.Minute}
		}
		return bucketLimit{burst: 60, every: 10 * time.Second}
	})
}
