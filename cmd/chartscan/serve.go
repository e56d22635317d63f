package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/web"
	"github.com/chartscan/chartscan/worker"
)

// checkHostPort reports whether v is a listen address, host:port.
func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want host:port, e.g. 127.0.0.1:8080")
	}
	return nil
}

func newServeCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API (/api/v1/) and the web UI for clerks, reviewers and admins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr != "" {
				if err := checkHostPort(addr); err != nil {
					return fmt.Errorf("--addr=%q: %w", addr, err)
				}
			}
			return serve(cmd.Context(), addr, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen on host:port (default $CHARTSCAN_HTTP_ADDR)")
	return cmd
}

func serve(ctx context.Context, addr string, stdout io.Writer) error {
	a, err := newApp(ctx, needDB|needObjects|needRedis|asServe)
	if err != nil {
		return err
	}
	defer a.close()
	if addr == "" {
		addr = a.cfg.HTTPAddr
	}
	var tlsCfg *tls.Config
	if a.cfg.TLSCert != "" {
		var warning string
		if tlsCfg, warning, err = serverTLS(a.cfg, time.Now()); err != nil {
			return err
		}
		if warning != "" {
			a.log.Warn(warning)
		}
	}
	// Re-scoring a reviewer's corrections needs no OCR: a worker without a reader, in the server.
	refiler, err := worker.New(worker.Config{Store: a.db, Objects: a.objects, Model: a.cfg.Model, Pages: a.cfg.Pages, Log: a.log})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newQueueCollector(asynq.NewInspectorFromRedisClient(a.redis)))
	srv, err := web.New(web.Config{
		Registry: reg,
		Store:    a.db, Objects: a.objects, Ingest: a.ingester(),
		ImportRecords: func(ctx context.Context, r io.Reader) (storage.ImportStats, error) {
			return importEMPI(ctx, a.db, r)
		},
		Progress: a.progressEvents,
		Rerun:    a.rerun,
		// A decision's re-filing runs on a worker, never in the reviewer's request.
		Refile: func(ctx context.Context, documentID string) error {
			t, err := worker.NewRefileTask(documentID)
			if err == nil {
				_, err = a.queue.EnqueueContext(ctx, t)
			}
			return err
		},
		Rescore: refiler.Rescore,
		Coversheet: func(w io.Writer, p chartscan.Patient, docType, dos string) error {
			return ocr.Coversheet(w, coversheetInfo(a.cfg, p, docType, dos))
		},
		Checks: map[string]func(context.Context) error{
			"redis": func(ctx context.Context) error { return a.redis.Ping(ctx).Err() },
			"minio": func(ctx context.Context) error { _, err := a.objects.Exists(ctx, "health"); return err },
		},
		NameKey:     indexer.NormalizeName,
		SessionIdle: a.cfg.SessionIdle,
		Log:         a.log,
		Limits: web.Limits{StreamsPerUser: a.cfg.StreamsPerUser, SpoolBytes: int64(a.cfg.SpoolBytes),
			DecodeBytes: int64(a.cfg.DecodeBytes)},
		TrustedProxies: a.cfg.TrustedProxies,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "cannot listen on %s: %v", addr, errorsCause(err))
	}
	// Read-header, read, write and idle timeouts (web.DefaultLimits); uploads, exports
	// and event streams move their own deadlines on while they move.
	hs := srv.HTTPServer()
	// The server's own complaints (a failed TLS handshake, a bad request line) go to the
	// structured log; they name a peer address, never a request's content.
	hs.ErrorLog = slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelInfo)
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		if string(a.cfg.AuditKey) == localAuditKey {
			a.log.Warn("CHARTSCAN_AUDIT_KEY is the local stack's default: anyone with the source can forge the audit chain; set your own before exposing serve")
		}
		if tlsCfg == nil && len(a.cfg.TrustedProxies) == 0 {
			a.log.Warn("serve speaks plain HTTP on a network address: passwords, sessions and patient data cross it in the clear; set CHARTSCAN_TLS_CERT and CHARTSCAN_TLS_KEY, or put a TLS-terminating proxy in front and set CHARTSCAN_TRUSTED_PROXIES")
		}
	}
	scheme := "http"
	if tlsCfg != nil {
		hs.TLSConfig, scheme = tlsCfg, "https"
	}
	// The first line of stdout is the URL, for scripts and tests (the port may be :0).
	fmt.Fprintf(stdout, "serving %s://%s\n", scheme, ln.Addr())
	a.log.Info("serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "trusted_proxies", len(a.cfg.TrustedProxies))
	go a.auditDeliveries(ctx) // the workers' delivery events into the audit log (deliver.go)
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "") // the certificate is in hs.TLSConfig
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Event streams never end on their own; Shutdown waits for them only until the timeout.
	if err := hs.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	a.log.Info("server stopped")
	return nil
}

// progressEvents subscribes to the worker's progress channel and sends the id of each
// document that moved. A slow reader misses events rather than holding up Redis: the live
// views recount from PostgreSQL anyway.
func (a *app) progressEvents(ctx context.Context) (<-chan string, error) {
	sub := a.redis.Subscribe(ctx, worker.ProgressChannel)
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		return nil, fmt.Errorf("subscribe to progress: %w", err)
	}
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer sub.Close()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				var ev worker.ProgressEvent
				if json.Unmarshal([]byte(m.Payload), &ev) != nil {
					continue
				}
				select {
				case out <- ev.DocumentID:
				default:
				}
			}
		}
	}()
	return out, nil
}

// rerun queues a document that storage.ResetDocument put back: to queued, or to
// processing with its failed pages to be read again.
func (a *app) rerun(ctx context.Context, documentID string) error {
	d, err := a.db.Document(ctx, documentID)
	if err != nil {
		return err
	}
	return worker.RerunPages(ctx, a.queue, fairInspector{asynq.NewInspectorFromRedisClient(a.redis)}, a.redis, documentID, d.PageCount)
}
