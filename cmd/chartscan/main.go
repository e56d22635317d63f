// Command chartscan digitizes paper medical charts: it ingests scans, runs the Asynq
// worker that splits, reads and files their pages, imports the EMPI and exports filings.
// All wiring and configuration live here.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// exitError carries an exit status chosen by a command (e.g. ingest --wait when a page
// failed) after the command has already said why.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		// Only user-safe messages reach the terminal; *chartscan.Error carries them.
		msg := err.Error()
		if chartscan.ErrorCode(err) != chartscan.EInternal {
			msg = chartscan.ErrorMessage(err)
		}
		fmt.Fprintln(os.Stderr, "chartscan:", msg)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "chartscan",
		Short:         "Digitize paper medical charts: OCR every page and file it to the right patient",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newWorkerCmd(), newIngestCmd(), newRecordsCmd(), newExportCmd(), newStatusCmd(),
		newMigrateCmd(), newConfigCmd(), newSynthCmd(), newEvaluateCmd(), newBenchEMPICmd(),
		newServeCmd(), newUsersCmd(), newAuditCmd(), newCoversheetCmd(), newRefileCmd(), newQACmd(), newVerifyCmd())
	root.AddCommand(newADTCmd())         // HL7 v2 ADT over MLLP: cmd/chartscan/adt.go
	root.AddCommand(newReportCmd())      // a batch's reconciliation: cmd/chartscan/report.go
	root.AddCommand(newIntakeCmd())      // the scanners' bucket: cmd/chartscan/intake.go
	root.AddCommand(newWatchCmd())       // a folder the scanners write to: cmd/chartscan/watch.go
	root.AddCommand(newDeliverCmd())     // delivery to the EHR: cmd/chartscan/deliver.go
	root.AddCommand(newOCRChildCmd())    // the worker's reader process: cmd/chartscan/worker.go
	root.AddCommand(newHealthcheckCmd()) // the container image's HEALTHCHECK: cmd/chartscan/healthcheck.go
	return root
}

// app holds the connections a command opens; each command opens only what it needs.
type app struct {
	cfg     config
	log     *slog.Logger
	db      *storage.DB
	objects *storage.Objects
	redis   redis.UniversalClient
	queue   *asynq.Client
}

type need int

const (
	needDB need = 1 << iota
	needObjects
	needRedis
	// Whose PostgreSQL role the command connects as (config.databaseURL); the CLI's when
	// none is named. Workers hold no audit key: they never write the audit log.
	asOwner
	asServe
	asWorker
)

func newApp(ctx context.Context, n need) (*app, error) {
	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	a := &app{cfg: cfg, log: newLogger(cfg)}
	if n&(asServe|asWorker) != 0 {
		// The long-running components say what would cross a network unprotected.
		for _, w := range transportWarnings(cfg, cfg.databaseURL(n)) {
			a.log.Warn("transport not protected: " + w)
		}
	}
	if n&needDB != 0 {
		if a.db, err = storage.Open(ctx, cfg.databaseURL(n)); err != nil {
			a.close()
			return nil, fmt.Errorf("%w%s", err, tlsHint(err, "the URL's sslmode and sslrootcert"))
		}
		if n&asWorker == 0 {
			if err := a.db.SetAuditKey(cfg.AuditKey); err != nil {
				a.close()
				return nil, err
			}
		}
		if err := a.db.Migrate(ctx); err != nil {
			a.close()
			return nil, err
		}
	}
	if n&needObjects != 0 {
		oc := storage.ObjectsConfig{Endpoint: cfg.MinIOEndpoint, AccessKey: cfg.MinIOAccessKey, SecretKey: cfg.MinIOSecretKey,
			Bucket: cfg.MinIOBucket, UseSSL: cfg.MinIOUseSSL, Encryption: cfg.MinIOSSE}
		if cfg.MinIOCA != "" {
			if oc.RootCAs, err = readCAFile("CHARTSCAN_MINIO_CA", cfg.MinIOCA); err != nil {
				a.close()
				return nil, err
			}
		}
		if a.objects, err = storage.NewObjects(ctx, oc); err != nil {
			a.close()
			return nil, fmt.Errorf("%w%s", err, tlsHint(err, "MINIO_USE_SSL, CHARTSCAN_MINIO_CA"))
		}
	}
	if n&needRedis != 0 {
		opt, err := redisOptions(cfg)
		if err != nil {
			a.close()
			return nil, err
		}
		a.redis = redis.NewClient(opt)
		if err := a.redis.Ping(ctx).Err(); err != nil {
			a.close()
			return nil, fmt.Errorf("connect redis at %s: %w%s", opt.Addr, err, tlsHint(err, "REDIS_URL's rediss://, CHARTSCAN_REDIS_CA"))
		}
		a.queue = asynq.NewClientFromRedisClient(a.redis)
	}
	return a, nil
}

// withApp runs fn with the connections n names open, and closes them after.
func withApp(ctx context.Context, n need, fn func(a *app) error) error {
	a, err := newApp(ctx, n)
	if err != nil {
		return err
	}
	defer a.close()
	return fn(a)
}

func (a *app) close() {
	if a.queue != nil {
		a.queue.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	if a.db != nil {
		a.db.Close()
	}
}

func newLogger(cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the PostgreSQL schema up to date (every command that needs it does this too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB|asOwner, func(a *app) error {
				fmt.Fprintln(cmd.OutOrStdout(), "schema up to date")
				return nil
			})
		},
	}
}

func newConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "List every configuration variable with its default and current value",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := loadConfig(os.Getenv); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, s := range settings {
				cur := os.Getenv(s.name)
				if cur == "" {
					cur = "(default)"
				} else if secretSettings[s.name] {
					cur = "(set)" // may hold a password
				}
				fmt.Fprintf(w, "%-28s default %-24q %s — %s\n", s.name, s.def, cur, s.help)
			}
			return nil
		},
	}
}
