package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chartscan/chartscan/assemble"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/web"
	"github.com/chartscan/chartscan/worker"
)

// config is every setting chartscan reads, all from the environment. The defaults match
// the local stack that `make up` starts (deploy/env.sh), so nothing needs setting there.
type config struct {
	RedisURL        string
	DatabaseURL     string // the schema owner's; every component's unless it has its own
	ServeDBURL      string // serve's role (storage.RoleServe), or ""
	WorkerDBURL     string // the workers' role (storage.RoleWorker), or ""
	CLIDBURL        string // the other commands' role (storage.RoleCLI), or ""
	AuditKey        []byte // keys the audit chain; serve and the CLI only
	MinIOEndpoint   string
	MinIOAccessKey  string
	MinIOSecretKey  string
	MinIOBucket     string
	MinIOUseSSL     bool
	MinIOCA         string // PEM file of the CA(s) that verify MinIO's certificate, or ""
	MinIOSSE        string
	RedisCA         string // PEM file of the CA(s) that verify Redis's certificate (rediss://), or ""
	TLSCert         string // serve's PEM certificate chain, or "" for plain HTTP
	TLSKey          string // its PEM private key
	TrustedProxies  []netip.Prefix
	HTTPAddr        string
	ADTAddr         string // where `chartscan adt` listens for HL7 v2 over MLLP
	MRNSystem       string // the assigning authority (HL7) or identifier system (FHIR) of the facility's MRNs
	MRNSystemURI    string // the facility's MRN system as a FHIR identifier.system (a URI; an OID as urn:oid:)
	Facility        string // the facility's name: HL7 MSH-4 of the documents sent
	SessionIdle     time.Duration
	Concurrency     int
	OCRLanguage     string
	OCRTimeout      time.Duration // wall-clock limit of one page's read in its child process
	WorkerMetrics   string        // where a worker serves its metrics, host:port, or ""
	Reader          string        // CHARTSCAN_READER: "" (Tesseract) or standin:DELAY, benchmarks only (standin.go)
	Limits          ocr.Limits
	LogLevel        slog.Level
	LogFormat       string
	ReconcileMinute int
	Model           indexer.Model
	Pages           worker.PagePolicy
	// What serve lets one request or user cost (web.Limits; timeouts keep their defaults).
	StreamsPerUser int
	SpoolBytes     int
	DecodeBytes    int
	Intake         intakeSettings  // chartscan intake and watch (intake.go)
	Deliver        deliverSettings // the EHR the workers deliver to (deliver.go)
}

// setting is one environment variable with its default and what it is for; the table
// is the single source for loadConfig and for `chartscan config` (and the README).
type setting struct {
	name, def, help string
	set             func(c *config, v string) error
}

func floatSetting(dst func(c *config) *float64) func(*config, string) error {
	return func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("want a number of at least 0")
		}
		*dst(c) = f
		return nil
	}
}

func intSetting(min int, dst func(c *config) *int) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
		if err != nil || n < min {
			return fmt.Errorf("want a whole number of at least %d", min)
		}
		*dst(c) = n
		return nil
	}
}

func dbURLSetting(dst func(c *config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			return fmt.Errorf("want postgres://user:password@host:port/db")
		}
		*dst(c) = v
		return nil
	}
}

// fileSetting is a setting that names a file; the file is read by the command that needs
// it, so a worker host need not hold serve's key.
func fileSetting(dst func(c *config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		*dst(c) = strings.TrimSpace(v)
		return nil
	}
}

func durationSetting(min, max time.Duration, dst func(c *config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min || d > max {
			return fmt.Errorf("want a duration from %v to %v", min, max)
		}
		*dst(c) = d
		return nil
	}
}

func choiceSetting(dst func(c *config) *string, choices ...string) func(*config, string) error {
	return func(c *config, v string) error {
		if !slices.Contains(choices, v) {
			return fmt.Errorf("want %s", strings.Join(choices, " or "))
		}
		*dst(c) = v
		return nil
	}
}

// localAuditKey is the local stack's audit key, the default like its other secrets.
const localAuditKey = "chartscan-local-audit-key-not-for-production"

// secretSettings may hold a password or key: `chartscan config` says only that they are set.
var secretSettings = map[string]bool{"MINIO_SECRET_KEY": true, "DATABASE_URL": true, "REDIS_URL": true, "CHARTSCAN_AUDIT_KEY": true,
	"CHARTSCAN_SERVE_DATABASE_URL": true, "CHARTSCAN_WORKER_DATABASE_URL": true, "CHARTSCAN_CLI_DATABASE_URL": true}

// databaseURL is the URL a command connects with: its component's role when it has one
// (n names the component), the owner's DATABASE_URL otherwise and for migrate.
func (c config) databaseURL(n need) string {
	url := ""
	switch {
	case n&asOwner != 0:
	case n&asServe != 0:
		url = c.ServeDBURL
	case n&asWorker != 0:
		url = c.WorkerDBURL
	default:
		url = c.CLIDBURL
	}
	if url == "" {
		return c.DatabaseURL
	}
	return url
}

var settings = []setting{
	{"REDIS_URL", "redis://127.0.0.1:6390/0", "Redis for the task queues and progress; rediss://host:port/db for TLS", func(c *config, v string) error {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return fmt.Errorf("want redis://host:port/db, or rediss://host:port/db for TLS")
		}
		c.RedisURL = v
		return nil
	}},
	{"CHARTSCAN_REDIS_CA", "", "PEM file of the CA that signed Redis's certificate (rediss:// only); trusted for Redis in place of the system's CAs", fileSetting(func(c *config) *string { return &c.RedisCA })},
	{"DATABASE_URL", "postgres://chartscan:chartscan@127.0.0.1:5440/chartscan?sslmode=disable", "PostgreSQL, the system of record, as the role that owns the schema (migrate); TLS: sslmode=verify-full&sslrootcert=CA.pem, in every role's URL", dbURLSetting(func(c *config) *string { return &c.DatabaseURL })},
	{"CHARTSCAN_SERVE_DATABASE_URL", "", "PostgreSQL as serve's own role (chartscan_serve); default DATABASE_URL", dbURLSetting(func(c *config) *string { return &c.ServeDBURL })},
	{"CHARTSCAN_WORKER_DATABASE_URL", "", "PostgreSQL as the workers' role (chartscan_worker: no audit log, no users); default DATABASE_URL", dbURLSetting(func(c *config) *string { return &c.WorkerDBURL })},
	{"CHARTSCAN_CLI_DATABASE_URL", "", "PostgreSQL as the CLI's role (chartscan_cli; migrate always uses DATABASE_URL); default DATABASE_URL", dbURLSetting(func(c *config) *string { return &c.CLIDBURL })},
	{"CHARTSCAN_AUDIT_KEY", localAuditKey, "key (32+ characters) of the audit log's HMAC chain, for serve and the CLI only — never the workers; the default is the local stack's: set your own anywhere else", func(c *config, v string) error {
		if len(v) < storage.MinAuditKeyLen {
			return fmt.Errorf("want at least %d characters", storage.MinAuditKeyLen)
		}
		c.AuditKey = []byte(v)
		return nil
	}},
	{"MINIO_ENDPOINT", "127.0.0.1:9010", "MinIO (or any S3) host:port for scans and page images", func(c *config, v string) error {
		if strings.Contains(v, "/") {
			return fmt.Errorf("want host:port, without a scheme")
		}
		c.MinIOEndpoint = v
		return nil
	}},
	{"MINIO_ACCESS_KEY", "chartscan", "MinIO access key", func(c *config, v string) error { c.MinIOAccessKey = v; return nil }},
	{"MINIO_SECRET_KEY", "chartscan-local-secret", "MinIO secret key (the default is the local stack's; set your own anywhere else)", func(c *config, v string) error { c.MinIOSecretKey = v; return nil }},
	{"MINIO_BUCKET", "chartscan", "bucket for every object chartscan stores", func(c *config, v string) error { c.MinIOBucket = v; return nil }},
	{"MINIO_SSE", "s3", "encryption at rest of every object: s3 (the MinIO KMS's key), kms:KEY (that KMS key) or none", func(c *config, v string) error {
		if v != "s3" && v != "none" && !(strings.HasPrefix(v, "kms:") && len(v) > 4) {
			return fmt.Errorf("want s3, kms:KEY or none")
		}
		c.MinIOSSE = v
		return nil
	}},
	{"MINIO_USE_SSL", "false", "use HTTPS to reach MinIO", func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		c.MinIOUseSSL = b
		return nil
	}},
	{"CHARTSCAN_MINIO_CA", "", "PEM file of the CA that signed MinIO's certificate (MINIO_USE_SSL=true only); trusted for MinIO in place of the system's CAs", fileSetting(func(c *config) *string { return &c.MinIOCA })},
	{"CHARTSCAN_CONCURRENCY", "", "tasks a worker runs at once, one Tesseract each (default: the number of CPUs)", intSetting(1, func(c *config) *int { return &c.Concurrency })},
	{"CHARTSCAN_OCR_LANGUAGE", "eng", "Tesseract language(s), e.g. eng or eng+spa", func(c *config, v string) error { c.OCRLanguage = v; return nil }},
	{"CHARTSCAN_OCR_TIMEOUT", "3m", "wall-clock limit of one page's read; a reader past it is stopped and the read counts as a crash (a page that crashes the reader twice fails)", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > time.Hour {
			return fmt.Errorf("want a duration from 10s to 1h, e.g. 3m")
		}
		c.OCRTimeout = d
		return nil
	}},
	{"CHARTSCAN_READER", "tesseract", "benchmarks and tests only: standin:DELAY makes a worker read no page, wait DELAY and return the same few words (make bench-scale); never set it in production", func(c *config, v string) error {
		if _, _, err := parseReader(v); err != nil {
			return err
		}
		c.Reader = v
		return nil
	}},
	{"CHARTSCAN_MAX_PIXELS", "100000000", "a page image above this many pixels fails its document", intSetting(1, func(c *config) *int { return &c.Limits.MaxPixels })},
	{"CHARTSCAN_RASTER_DPI", "300", "resolution for pages that must be rasterized", intSetting(50, func(c *config) *int { return &c.Limits.RasterDPI })},
	{"CHARTSCAN_RASTER_MAX_PIXELS", "25000000", "a rasterized page is scaled to at most this many pixels", intSetting(1_000_000, func(c *config) *int { return &c.Limits.RasterMaxPixels })},
	{"CHARTSCAN_RECONCILE_MINUTES", "2", "a worker re-queues work untouched this long (lost with Redis or a crash)", intSetting(1, func(c *config) *int { return &c.ReconcileMinute })},
	{"CHARTSCAN_MRN_CHECK_DIGIT", "luhn", "MRN check-digit scheme: luhn (mod 10) or none; OCR'd MRNs are repaired only to a variant that passes and exists", func(c *config, v string) error {
		if v != "luhn" && v != "none" {
			return fmt.Errorf("want luhn or none")
		}
		c.Model.CheckDigit = v
		return nil
	}},
	{"CHARTSCAN_AUTO_WEIGHT", fmt.Sprint(indexer.DefaultModel().AutoWeight), "match weight (bits) a segment's best candidate needs to be auto-filed", floatSetting(func(c *config) *float64 { return &c.Model.AutoWeight })},
	{"CHARTSCAN_MARGIN", fmt.Sprint(indexer.DefaultModel().Margin), "bits the best candidate must lead the runner-up by to be auto-filed", floatSetting(func(c *config) *float64 { return &c.Model.Margin })},
	{"CHARTSCAN_REVIEW_WEIGHT", fmt.Sprint(indexer.DefaultModel().ReviewWeight), "below this weight no candidate is plausible: the segment is unmatched", floatSetting(func(c *config) *float64 { return &c.Model.ReviewWeight })},
	{"CHARTSCAN_QUALITY_FLOOR", "50", "OCR read quality (0–100) below which a page is a poor scan and goes to review", floatSetting(func(c *config) *float64 { return &c.Pages.QualityFloor })},
	{"CHARTSCAN_QA_RATE", "0.02", "share (0–1) of automatically filed pages drawn for a reviewer's quality check", func(c *config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("want a share between 0 and 1")
		}
		c.Pages.QARate = f
		return nil
	}},
	{"CHARTSCAN_COVER_PREFIX", "CHARTSCAN:", "barcode prefix of a patient cover sheet: <prefix>MRN=<mrn>[;DOC=<type>][;DOS=<date>]", func(c *config, v string) error { c.Pages.CoverPrefix = v; return nil }},
	{"CHARTSCAN_SEPARATOR_VALUE", "PATCHT", "barcode value of a separator sheet (PATCH-T by default)", func(c *config, v string) error { c.Pages.SeparatorValue = v; return nil }},
	{"CHARTSCAN_WORKER_METRICS_ADDR", "127.0.0.1:9464", "where a worker serves its Prometheus metrics (/metrics: chartscan_stage_seconds, process), host:port; empty: none. A second worker on the host finds the port taken and serves none", func(c *config, v string) error {
		if v != "" {
			if err := checkHostPort(v); err != nil {
				return err
			}
		}
		c.WorkerMetrics = v
		return nil
	}},
	{"CHARTSCAN_HTTP_ADDR", "127.0.0.1:8080", "where serve listens, host:port (--addr overrides)", func(c *config, v string) error {
		if err := checkHostPort(v); err != nil {
			return err
		}
		c.HTTPAddr = v
		return nil
	}},
	{"CHARTSCAN_TLS_CERT", "", "PEM certificate (chain) serve presents: with CHARTSCAN_TLS_KEY serve speaks HTTPS only; neither: plain HTTP, for loopback or a TLS-terminating proxy", fileSetting(func(c *config) *string { return &c.TLSCert })},
	{"CHARTSCAN_TLS_KEY", "", "PEM private key of CHARTSCAN_TLS_CERT (read once at start: restart serve after renewing)", fileSetting(func(c *config) *string { return &c.TLSKey })},
	{"CHARTSCAN_TRUSTED_PROXIES", "", "reverse proxies whose X-Forwarded-For names the client, comma-separated IPs or CIDRs (default: none, the peer is the client)", func(c *config, v string) error {
		p, err := web.ParseTrustedProxies(v)
		if err != nil {
			return err
		}
		c.TrustedProxies = p
		return nil
	}},
	{"CHARTSCAN_ADT_ADDR", "127.0.0.1:2575", "where `chartscan adt` listens for HL7 v2 ADT over MLLP, host:port (--addr overrides)", func(c *config, v string) error {
		if err := checkHostPort(v); err != nil {
			return err
		}
		c.ADTAddr = v
		return nil
	}},
	{"CHARTSCAN_MRN_SYSTEM", "", "the facility's MRN system: HL7 assigning authority (CX-4) or FHIR identifier.system; identifiers of others are not MRNs (default: the one typed MR)", func(c *config, v string) error { c.MRNSystem = strings.TrimSpace(v); return nil }},
	{"CHARTSCAN_MRN_SYSTEM_URI", "", "the facility's MRN system as FHIR names it: a URI (https://…, urn:…) or an OID (as urn:oid:…), for the documents exported and delivered as FHIR (default: CHARTSCAN_MRN_SYSTEM when it is one)", func(c *config, v string) error {
		uri, ok := assemble.FHIRSystem(v)
		if !ok {
			return fmt.Errorf("want a URI (https://…, urn:…) or an OID")
		}
		c.MRNSystemURI = uri
		return nil
	}},
	{"CHARTSCAN_FACILITY", "", "the facility's name (an HL7 namespace): MSH-4 of the documents exported and delivered as HL7 MDM", func(c *config, v string) error {
		if strings.ContainsAny(v, "|^~\\&\r\n") {
			return fmt.Errorf("want a name without HL7 delimiters (| ^ ~ \\ &)")
		}
		c.Facility = strings.TrimSpace(v)
		return nil
	}},
	{"CHARTSCAN_SESSION_IDLE", "15m", "a web session without a request this long is over (HIPAA automatic logoff), e.g. 15m or 1h; at most 12h", func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > web.MaxSessionIdle {
			return fmt.Errorf("want a duration from 1s to 12h, e.g. 15m")
		}
		c.SessionIdle = d
		return nil
	}},
	{"CHARTSCAN_INTAKE_BUCKET", "chartscan-inbox", "bucket the scanners write to, which `chartscan intake` takes scans from (made if missing, encrypted as MINIO_SSE says)", func(c *config, v string) error {
		if strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("want a bucket name")
		}
		c.Intake.Bucket = v
		return nil
	}},
	{"CHARTSCAN_INTAKE_PREFIX", "inbox/", "prefix of the intake bucket's objects to take: PREFIX<station>/<box>/scan.pdf goes to the batch labelled <station>/<box>", func(c *config, v string) error {
		v = strings.TrimPrefix(v, "/")
		if v != "" && !strings.HasSuffix(v, "/") {
			v += "/"
		}
		if strings.HasPrefix(v, storage.TakenPrefix) {
			return fmt.Errorf("want a prefix outside %s, where taken scans go", storage.TakenPrefix)
		}
		c.Intake.Prefix = v
		return nil
	}},
	{"CHARTSCAN_INTAKE_TAKEN", "move", "what `intake` does with a scan it took: move (to taken/<path below the prefix>) or tag (chartscan-taken=<document id>, left in place)", choiceSetting(func(c *config) *string { return &c.Intake.BucketTaken }, "move", "tag")},
	{"CHARTSCAN_INTAKE_RESCAN", "1m", "how often `intake` lists the inbox besides listening, for scans that came while no listener ran", durationSetting(time.Second, 24*time.Hour, func(c *config) *time.Duration { return &c.Intake.Rescan })},
	{"CHARTSCAN_INTAKE_BATCH_IDLE", "1h", "an intake or watched-folder batch that took no file this long is closed: its prefix's next scan starts a new batch (0: never)", durationSetting(0, 30*24*time.Hour, func(c *config) *time.Duration { return &c.Intake.BatchIdle })},
	{"CHARTSCAN_WATCH_SETTLE", "5s", "`watch` takes a file once its size and modification time have not changed this long", durationSetting(100*time.Millisecond, time.Hour, func(c *config) *time.Duration { return &c.Intake.Settle })},
	{"CHARTSCAN_WATCH_TAKEN", "move", "what `watch` does with a file it took: move (to DIR/.done/) or marker (a hidden .NAME.chartscan-taken beside it)", choiceSetting(func(c *config) *string { return &c.Intake.FolderTaken }, "move", "marker")},
	{"CHARTSCAN_LOG_LEVEL", "info", "debug, info, warn or error", func(c *config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{"CHARTSCAN_LOG_FORMAT", "text", "text or json", func(c *config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("want text or json")
		}
		c.LogFormat = v
		return nil
	}},
	{"CHARTSCAN_MAX_PAGES", "2000", "a file of more pages fails its document before any page is stored", intSetting(1, func(c *config) *int { return &c.Limits.MaxPages })},
	{"CHARTSCAN_STREAMS_PER_USER", "8", "live views (event streams) one user may hold open at once in serve", intSetting(1, func(c *config) *int { return &c.StreamsPerUser })},
	{"CHARTSCAN_UPLOAD_SPOOL_BYTES", "4294967296", "bytes of uploads of unknown size serve spools to disk at once, all users together", intSetting(1<<20, func(c *config) *int { return &c.SpoolBytes })},
	{"CHARTSCAN_IMAGE_DECODE_BYTES", "268435456", "memory a page image may decode to in serve (thumbnails, TIFF to PNG); checked from its header first", intSetting(1<<20, func(c *config) *int { return &c.DecodeBytes })},
}

// loadConfig reads the configuration through getenv, failing on the first bad variable
// with its name.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{Concurrency: runtime.NumCPU(), Model: indexer.DefaultModel()}
	for _, s := range settings {
		v := getenv(s.name)
		if v == "" {
			v = s.def
		}
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			if secretSettings[s.name] {
				return c, fmt.Errorf("%s: %v", s.name, err) // the value may hold a password
			}
			return c, fmt.Errorf("%s=%q: %v", s.name, v, err)
		}
	}
	return c, c.checkTransport()
}

// checkTransport refuses TLS settings that contradict each other, which would otherwise
// leave a connection in cleartext while the operator believes it protected.
func (c config) checkTransport() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("CHARTSCAN_TLS_CERT and CHARTSCAN_TLS_KEY: set both (serve speaks HTTPS) or neither (plain HTTP, for loopback or behind a TLS-terminating proxy)")
	}
	if c.RedisCA != "" && !strings.HasPrefix(c.RedisURL, "rediss://") {
		return fmt.Errorf("CHARTSCAN_REDIS_CA is set but REDIS_URL is not rediss://: Redis would be reached in cleartext; use rediss://host:port/db")
	}
	if c.MinIOCA != "" && !c.MinIOUseSSL {
		return fmt.Errorf("CHARTSCAN_MINIO_CA is set but MINIO_USE_SSL is false: MinIO would be reached in cleartext; set MINIO_USE_SSL=true")
	}
	return nil
}
