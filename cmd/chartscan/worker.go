package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Asynq worker: split, OCR, extract and match (add more on any host that reaches the stores)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ensureSingleThreadTesseract(); err != nil {
				return err
			}
			return runWorker(cmd.Context())
		},
	}
}

// newOCRChildCmd is the worker's reader process (ocr.ServeChild): it reads the pages its
// worker sends on standard input and answers on standard output. Not for people.
func newOCRChildCmd() *cobra.Command {
	var lang string
	c := &cobra.Command{
		Use:    "ocr-child",
		Short:  "Read page images for a worker, in a process of their own",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := ensureSingleThreadTesseract(); err != nil {
				return err
			}
			in, out, err := ocr.ChildStreams()
			if err != nil {
				return err
			}
			e := ocr.NewEngine(1, lang)
			defer e.Close()
			return ocr.ServeChild(in, out, e)
		},
	}
	c.Flags().StringVar(&lang, "lang", "eng", "Tesseract language(s)")
	return c
}

// ensureSingleThreadTesseract re-executes the process with OMP_THREAD_LIMIT=1 unless it
// is set: OpenMP reads it once when Tesseract's library loads, before main runs, and a
// worker gets its parallelism from concurrent slots, each one single-threaded Tesseract.
func ensureSingleThreadTesseract() error {
	if os.Getenv("OMP_THREAD_LIMIT") != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, append(os.Environ(), "OMP_THREAD_LIMIT=1"))
}

func runWorker(ctx context.Context) error {
	a, err := newApp(ctx, needDB|needObjects|needRedis|asWorker)
	if err != nil {
		return err
	}
	defer a.close()
	// Every page is read in a child process of this program, one per slot (ocr.Isolated):
	// a crash in C or a stuck read costs that page's read, never the worker.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var reader interface {
		worker.Reader
		Close()
	}
	if standin, delay, _ := parseReader(a.cfg.Reader); standin {
		reader = standinReader{delay: delay}
		a.log.Warn("CHARTSCAN_READER=standin: pages are NOT read (a benchmark's stand-in reader); never run this in production", "delay", delay.String())
	} else {
		reader = ocr.NewIsolated(ocr.IsolatedConfig{Slots: a.cfg.Concurrency, Timeout: a.cfg.OCRTimeout, Log: a.log,
			Command: func() *exec.Cmd { return exec.Command(exe, "ocr-child", "--lang", a.cfg.OCRLanguage) }})
	}
	defer reader.Close()
	// OCR tasks fair by batch (fairqueue.go): the worker's enqueues and look-ups go
	// through the shards.
	insp := asynq.NewInspectorFromRedisClient(a.redis)
	stages := serveWorkerMetrics(ctx, a)
	w, err := worker.New(worker.Config{
		Store: a.db, Objects: a.objects, Reader: reader, Queue: newFairQueue(a.queue, insp, a.redis, a.db.DocumentBatch), Redis: a.redis,
		Inspect: fairInspector{insp},
		Keys:    worker.Keys{Original: storage.OriginalKey, PageImage: storage.PageImageKey},
		Limits:  a.cfg.Limits, Model: a.cfg.Model, Pages: a.cfg.Pages, Transient: storage.Transient, Log: a.log,
		Observe: func(stage string, d time.Duration) { stages.WithLabelValues(stage).Observe(d.Seconds()) },
	})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	srv := asynq.NewServerFromRedisClient(a.redis, asynq.Config{
		Concurrency: a.cfg.Concurrency,
		Queues:      serverQueues(),
		Logger:      asynqLogger{a.log},
		LogLevel:    asynq.WarnLevel,
		// A store fault is waited out, every 5–30 s, without spending the task's budget;
		// other failures back off from 2 s to 5 minutes (see worker.RetryDelay).
		RetryDelayFunc: w.RetryDelay,
		IsFailure:      w.IsFailure,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			id, _ := asynq.GetTaskID(ctx)
			n, _ := asynq.GetRetryCount(ctx)
			if !w.IsFailure(err) {
				a.log.Info("task waits for a store", "task", t.Type(), "task_id", id, "error", err)
				return
			}
			a.log.Warn("task failed", "task", t.Type(), "task_id", id, "retry", n, "error", err)
		}),
		ShutdownTimeout: 30 * time.Second,
	})
	mux := asynq.NewServeMux()
	w.Register(mux)
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	a.log.Info("worker started", "concurrency", a.cfg.Concurrency, "queues", serverQueues())
	// Delivery to the EHR, when one is configured: the deliver queue (deliver.go).
	stopDelivery, err := runDelivery(ctx, a)
	if err != nil {
		srv.Shutdown()
		return err
	}
	defer stopDelivery()

	every := time.Duration(a.cfg.ReconcileMinute) * time.Minute
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if n, err := w.Reconcile(ctx, every); err != nil {
			a.log.Warn("reconcile", "error", err)
		} else if n > 0 {
			a.log.Info("reconcile: re-queued unfinished documents", "documents", n)
		}
		select {
		case <-ctx.Done():
			a.log.Info("worker stopping: in-flight tasks go back to the queue")
			srv.Shutdown()
			return nil
		case <-tick.C:
		}
	}
}

// serveWorkerMetrics serves the worker's metrics on CHARTSCAN_WORKER_METRICS_ADDR until
// ctx ends and returns the stage histogram. An address already taken (a second worker
// on the host) leaves this worker without an endpoint, which it says; it still works.
func serveWorkerMetrics(ctx context.Context, a *app) *prometheus.HistogramVec {
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "chartscan_stage_seconds",
		Help: "How long a stage of a page's processing took: queue waits, fetch, the reader's stages, store, extract, match.",
		// 1 ms to about 65 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	}, []string{"stage"})
	if a.cfg.WorkerMetrics == "" {
		return stages
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(stages, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", a.cfg.WorkerMetrics)
	if err != nil {
		a.log.Warn("worker metrics not served: the address is taken or not ours", "addr", a.cfg.WorkerMetrics, "error", err)
		return stages
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if standin, _, _ := parseReader(a.cfg.Reader); standin {
		// Benchmarks only (make bench-scale): the worker's profiles, beside its metrics.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	a.log.Info("worker metrics", "addr", ln.Addr().String())
	return stages
}

// asynqLogger routes Asynq's own messages into the structured log.
type asynqLogger struct {
	l interface {
		Debug(string, ...any)
		Info(string, ...any)
		Warn(string, ...any)
		Error(string, ...any)
	}
}

func (l asynqLogger) Debug(args ...any) { l.l.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Info(args ...any)  { l.l.Info(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Warn(args ...any)  { l.l.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Error(args ...any) { l.l.Error(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Fatal(args ...any) {
	l.l.Error(fmt.Sprint(args...), "component", "asynq")
	os.Exit(1)
}
