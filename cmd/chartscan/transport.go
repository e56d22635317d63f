package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// Transport security (issue 10, item 8): serve's HTTPS, and TLS to PostgreSQL, Redis and
// MinIO. PostgreSQL's is entirely in its URLs (sslmode, sslrootcert; pgx reads them), so
// each role's URL carries its own; Redis's is the rediss:// scheme plus an optional CA,
// MinIO's MINIO_USE_SSL plus an optional CA.

// readCAFile reads a PEM file of CA certificates for the connection setting configures.
// The pool holds only them: a private CA's certificate is trusted for that service, and
// no public CA can vouch for an impostor of it.
func readCAFile(setting, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read the CA file: %w", setting, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", setting, path)
	}
	return pool, nil
}

// redisOptions are the options of every Redis client chartscan makes (the queue's, the
// workers', progress): one client per process, shared by asynq.
func redisOptions(c config) (*redis.Options, error) {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		// The URL may hold a password: the parser's message, not the URL.
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if c.RedisCA != "" && opt.TLSConfig != nil {
		if opt.TLSConfig.RootCAs, err = readCAFile("CHARTSCAN_REDIS_CA", c.RedisCA); err != nil {
			return nil, err
		}
	}
	return opt, nil
}

// tls12Suites are the TLS 1.2 cipher suites serve offers: forward secret and AEAD only
// (Mozilla's "intermediate" list). TLS 1.3's suites are not configurable, and all good.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLS loads serve's certificate and key once, at start: a renewed certificate
// takes a restart, which the operator's renewal hook does. A certificate that is not
// valid today stops serve rather than be shown to every browser; one that expires
// within 14 days is warned of.
func serverTLS(c config, now time.Time) (cfg *tls.Config, warning string, err error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, "", fmt.Errorf("CHARTSCAN_TLS_CERT, CHARTSCAN_TLS_KEY: cannot load the certificate and its key: %v", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, "", fmt.Errorf("CHARTSCAN_TLS_CERT: the certificate cannot be read: %v", err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, "", fmt.Errorf("CHARTSCAN_TLS_CERT: the certificate expired on %s; renew it", leaf.NotAfter.Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return nil, "", fmt.Errorf("CHARTSCAN_TLS_CERT: the certificate is not valid until %s; check this host's clock", leaf.NotBefore.Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < 14*24*time.Hour:
		warning = fmt.Sprintf("serve's certificate expires on %s: renew it and restart serve", leaf.NotAfter.Format(time.DateOnly))
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tls12Suites,
		Certificates: []tls.Certificate{cert},
	}, warning, nil
}

// tlsHint turns the usual TLS mistakes in reaching a store into what to change; setting
// names where that store's TLS is configured. It returns "" for other errors.
func tlsHint(err error, setting string) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		pgErr    *pgconn.PgError
	)
	switch {
	case errors.As(err, &unknown):
		return " — its certificate is signed by a CA this host does not trust: give that CA's PEM file in " + setting
	case errors.As(err, &hostname):
		return " — its certificate does not name the host connected to: connect by a name (or IP) the certificate has"
	case errors.As(err, &invalid):
		return " — its certificate is not valid now (expired, or not a server certificate): renew it"
	case errors.As(err, &record):
		return " — it does not speak TLS on that port: check the port, or its TLS setting (" + setting + ")"
	case errors.As(err, &pgErr) && pgErr.Code == "28000" && strings.Contains(pgErr.Message, "no encryption"):
		return " — PostgreSQL accepts only TLS connections here: add sslmode=verify-full&sslrootcert=CA.pem to the URL"
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return " — the server closed the connection: if it speaks only TLS, turn TLS on (" + setting + ")"
	case strings.Contains(err.Error(), "HTTP request to an HTTPS server"):
		return " — it speaks HTTPS: turn TLS on (" + setting + ")"
	}
	return ""
}

// isLocal reports whether host is this machine, where cleartext crosses no network.
func isLocal(host string) bool {
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") {
		return true // "" and "/…" are Unix sockets
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// transportWarnings names each store connection that would cross a network in cleartext,
// or with TLS but without checking who answers: what serve and the workers log at
// start, so an operator sees it before patient data crosses. No URL is repeated: they may
// hold passwords.
func transportWarnings(c config, dbURL string) []string {
	var out []string
	if u, err := url.Parse(dbURL); err == nil && !isLocal(u.Hostname()) {
		switch mode := u.Query().Get("sslmode"); mode {
		case "verify-full":
		case "verify-ca":
			out = append(out, fmt.Sprintf("PostgreSQL at %s: sslmode=verify-ca checks the CA but not the host name; use sslmode=verify-full", u.Hostname()))
		default:
			if mode == "" {
				mode = "prefer (the default)"
			}
			out = append(out, fmt.Sprintf("PostgreSQL at %s: sslmode=%s may fall back to cleartext or not check the server; use sslmode=verify-full (with sslrootcert=CA.pem for a private CA)", u.Hostname(), mode))
		}
	}
	if u, err := url.Parse(c.RedisURL); err == nil && !isLocal(u.Hostname()) {
		switch {
		case u.Scheme == "redis":
			out = append(out, fmt.Sprintf("Redis at %s is reached in cleartext: use rediss:// (and CHARTSCAN_REDIS_CA for a private CA)", u.Hostname()))
		case u.Query().Get("skip_verify") == "true":
			out = append(out, fmt.Sprintf("Redis at %s: skip_verify=true accepts any certificate; remove it (CHARTSCAN_REDIS_CA for a private CA)", u.Hostname()))
		}
	}
	if h, _, err := net.SplitHostPort(c.MinIOEndpoint); err == nil && !isLocal(h) && !c.MinIOUseSSL {
		out = append(out, fmt.Sprintf("MinIO at %s is reached in cleartext: set MINIO_USE_SSL=true (and CHARTSCAN_MINIO_CA for a private CA)", h))
	}
	return out
}
