package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// intakeSettings configure the scanners' ways in: the bucket (`chartscan intake`) and
// watched folders (`chartscan watch`, watch.go).
type intakeSettings struct {
	Bucket, Prefix string
	BucketTaken    string        // move | tag
	Rescan         time.Duration // how often intake lists the inbox
	BatchIdle      time.Duration // an intake batch without a new file this long is closed
	Settle         time.Duration // watch: a file unchanged this long is complete
	FolderTaken    string        // watch: move | marker
}

func newIntakeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "intake",
		Short: "Take the scans the scanners write to the intake bucket: listen, ingest, move to taken/ (runs until stopped)",
		Long: `intake takes every scan written under CHARTSCAN_INTAKE_PREFIX of CHARTSCAN_INTAKE_BUCKET,
as MinIO notifies it and by listing the prefix at start and every CHARTSCAN_INTAKE_RESCAN,
into the batch its prefix names (inbox/<station>/<box>/scan.pdf: "<station>/<box>"),
then moves it to taken/<station>/<box>/scan.pdf (or tags it, CHARTSCAN_INTAKE_TAKEN=tag).
A scan's content is stored once, whoever takes it how often; any number of intake
processes may run. SIGTERM finishes the scans in hand first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB|needObjects|needRedis, func(a *app) error {
				s := a.cfg.Intake
				inbox, err := a.objects.Inbox(cmd.Context(), s.Bucket, s.Prefix, a.cfg.MinIOSSE)
				if err != nil {
					return err
				}
				r := &intakeRunner{a: a, in: a.ingester(), inbox: inbox, leases: newLeases(a.redis), s: s, q: newKeyQueue()}
				return r.run(cmd.Context())
			})
		},
	}
}

// intakeSlots is how many scans one intake process takes at once: the work is moving
// bytes, not computing.
const intakeSlots = 4

// inFlightGrace is how long a stopping intake or watch gives the scans in hand.
const inFlightGrace = time.Minute

type intakeRunner struct {
	a      *app
	in     *ingester
	inbox  *storage.Inbox
	leases *leases
	s      intakeSettings
	q      *keyQueue
	kick   chan struct{} // list the inbox soon
}

func (r *intakeRunner) run(ctx context.Context) error {
	r.kick = make(chan struct{}, 1)
	log := r.a.log.With("bucket", r.inbox.Bucket)
	log.Info("intake: listening for scans", "taken", r.s.BucketTaken, "rescan", r.s.Rescan.String())

	// Scans in hand are finished after a stop, within the grace period.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	for range intakeSlots {
		wg.Go(func() {
			for {
				key, ok := r.q.next(ctx)
				if !ok {
					return
				}
				r.take(work, key)
				r.q.done(key)
			}
		})
	}
	wg.Go(func() { r.listen(ctx) })

	tick := time.NewTicker(r.s.Rescan)
	defer tick.Stop()
	for ctx.Err() == nil {
		r.list(ctx)
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-r.kick:
		}
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(inFlightGrace):
		stopWork()
		<-stopped
	}
	log.Info("intake: stopped")
	return nil
}

// listen follows the bucket's notifications, listening again when they stop (MinIO
// restarted, the network) and then listing the inbox for what came meanwhile.
func (r *intakeRunner) listen(ctx context.Context) {
	backoff, failures := time.Second, 0
	for ctx.Err() == nil {
		err := r.inbox.Listen(ctx, func(key string) {
			backoff, failures = time.Second, 0
			if r.wanted(key) && r.q.add(key) {
				r.a.log.Debug("intake: scan notified", "object", fileID(key))
			}
		})
		if ctx.Err() != nil {
			return
		}
		// A MinIO that never answers (see README: some builds hold the stream back) fails
		// every minute: said once, then every tenth time.
		if failures++; failures%10 == 1 {
			r.a.log.Warn("intake: bucket notifications stopped; listening again, and listing the inbox meanwhile", "error", err, "failures", failures)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// maxQueued bounds the keys a listing queues; the rest wait for the next listing.
const maxQueued = 10000

// list queues every object of the inbox not yet taken: at start, every CHARTSCAN_INTAKE_RESCAN
// and after the notifications stopped, so a scan written while no listener ran is taken.
func (r *intakeRunner) list(ctx context.Context) {
	objects, queued := 0, 0
	err := r.inbox.List(ctx, func(o storage.InboxObject) bool {
		if !r.wanted(o.Key) || o.Taken || o.Size == 0 {
			return true
		}
		objects++
		if r.q.add(o.Key) {
			queued++
		}
		return r.q.len() < maxQueued
	})
	if err != nil && ctx.Err() == nil {
		r.a.log.Warn("intake: listing the inbox failed; trying again at the next listing", "error", err)
		return
	}
	r.a.log.Debug("intake: inbox listed", "scans", objects, "queued", queued)
}

// wanted says whether key is a scan of the inbox to take: a scan's file name (as a
// folder walk takes them), nothing hidden, not under taken/.
func (r *intakeRunner) wanted(key string) bool {
	rel, ok := strings.CutPrefix(key, r.inbox.Prefix)
	if !ok || rel == "" || strings.HasPrefix(key, storage.TakenPrefix) || strings.HasSuffix(key, "/") {
		return false
	}
	for _, seg := range strings.Split(rel, "/") {
		if strings.HasPrefix(seg, ".") {
			return false
		}
	}
	return slices.Contains(scanExtensions, strings.ToLower(path.Ext(rel)))
}

// intakeLabel is the batch label and file name of a path below the inbox prefix or the
// watched folder: station/box/scan.pdf is scan.pdf of the batch "station/box".
func intakeLabel(rel string) (label, name string) {
	label, name = path.Split(rel)
	return strings.TrimSuffix(label, "/"), name
}

// fileID names a scanner's file in logs without its name (file names may say whose
// chart it is): the start of the SHA-256 of its path.
func fileID(p string) string {
	h := sha256.Sum256([]byte(p))
	return hex.EncodeToString(h[:6])
}

// take ingests one object and marks it taken. Whatever fails leaves the object in the
// inbox for the next listing; what was done already is not done twice (the content is
// stored under its SHA-256, the batch lists it once).
func (r *intakeRunner) take(ctx context.Context, key string) {
	log := r.a.log.With("object", fileID(key))
	release, ok, err := r.leases.take(ctx, "intake:"+r.inbox.Bucket+"/"+key)
	if err != nil {
		log.Warn("intake: cannot lease the scan; trying again at the next listing", "error", err)
		return
	}
	if !ok {
		log.Debug("intake: another intake has the scan in hand")
		return
	}
	defer release()
	obj, err := r.inbox.Stat(ctx, key)
	switch {
	case errors.Is(err, storage.ErrNoObject):
		return // taken meanwhile, or removed
	case err != nil:
		log.Warn("intake: cannot look at the scan; trying again at the next listing", "error", err)
		return
	case obj.Size == 0:
		log.Debug("intake: empty object left in the inbox")
		return
	case obj.Taken:
		return
	}
	body, err := r.inbox.Open(ctx, key, obj.ETag)
	switch {
	case errors.Is(err, storage.ErrNoObject), errors.Is(err, storage.ErrChanged):
		return // the new content comes with its own notification, or the next listing
	case err != nil:
		log.Warn("intake: cannot read the scan; trying again at the next listing", "error", err)
		return
	}
	defer body.Close()
	label, name := intakeLabel(strings.TrimPrefix(key, r.inbox.Prefix))
	batch, err := r.a.db.OpenIntakeBatch(ctx, chartscan.BatchIntake, label, r.s.BatchIdle)
	if err != nil {
		log.Warn("intake: no batch for the scan; trying again at the next listing", "error", err)
		return
	}
	doc, created, err := r.in.Ingest(ctx, batch.ID, name, body, obj.Size)
	if err != nil {
		log.Warn("intake: scan not ingested; trying again at the next listing", "batch_id", batch.ID, "error", err)
		return
	}
	if r.s.BucketTaken == "tag" {
		err = r.inbox.Tag(ctx, key, obj.ETag, doc.ID)
	} else {
		err = r.inbox.Move(ctx, key, obj.ETag)
	}
	switch {
	case errors.Is(err, storage.ErrChanged):
		log.Info("intake: scan replaced while taken; its new content is taken next", "batch_id", batch.ID, "document_id", doc.ID)
	case err != nil && !errors.Is(err, storage.ErrNoObject):
		log.Warn("intake: scan ingested but not marked taken; the next listing finds it stored", "batch_id", batch.ID, "document_id", doc.ID, "error", err)
	default:
		log.Info("intake: scan taken", "batch_id", batch.ID, "document_id", doc.ID, "new", created, "bytes", obj.Size)
	}
}

// keyQueue holds the keys waiting to be taken, each once, in the order they came.
type keyQueue struct {
	mu      sync.Mutex
	pending []string
	held    map[string]bool // pending or in hand
	ready   chan struct{}
}

func newKeyQueue() *keyQueue {
	return &keyQueue{held: map[string]bool{}, ready: make(chan struct{}, 1)}
}

// add queues key unless it is queued or in hand already; it reports whether it did.
func (q *keyQueue) add(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.held[key] {
		return false
	}
	q.held[key] = true
	q.pending = append(q.pending, key)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// next waits for a key; false once ctx ends.
func (q *keyQueue) next(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		if len(q.pending) > 0 && ctx.Err() == nil {
			k := q.pending[0]
			q.pending = q.pending[1:]
			more := len(q.pending) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return k, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-q.ready:
		}
	}
}

// done forgets a key taken (or not): a later notification or listing queues it again.
func (q *keyQueue) done(key string) {
	q.mu.Lock()
	delete(q.held, key)
	q.mu.Unlock()
}

func (q *keyQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// leases keep two intake (or watch) processes from taking one scan at the same time: a
// Redis key per scan, set if absent, renewed while the scan is in hand and removed after.
// One that dies leaves its lease to expire; PostgreSQL's unique SHA-256 keeps even a
// scan taken twice one document.
type leases struct {
	rdb   redis.UniversalClient
	owner string
	ttl   time.Duration
}

func newLeases(rdb redis.UniversalClient) *leases {
	b := make([]byte, 12)
	rand.Read(b)
	return &leases{rdb: rdb, owner: hex.EncodeToString(b), ttl: 2 * time.Minute}
}

var (
	renewLease   = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

// take leases the scan named name; ok is false when another process holds it.
func (l *leases) take(ctx context.Context, name string) (release func(), ok bool, err error) {
	key := "chartscan:intake:lease:" + hex.EncodeToString(func() []byte { h := sha256.Sum256([]byte(name)); return h[:] }())
	ok, err = l.rdb.SetNX(ctx, key, l.owner, l.ttl).Result()
	if err != nil || !ok {
		return func() {}, false, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				renewLease.Run(context.WithoutCancel(ctx), l.rdb, []string{key}, l.owner, l.ttl.Milliseconds())
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		releaseLease.Run(ctx, l.rdb, []string{key}, l.owner)
	}, true, nil
}
