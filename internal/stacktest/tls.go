package stacktest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// TLSEnv is a stack of a test's own with TLS on every connection: a redis-server that
// listens only on a TLS port, a PostgreSQL cluster whose pg_hba.conf admits only hostssl,
// and a MinIO server with a certificate, all on loopback ports of their own and signed
// by a CA made for the test. It is how the transport settings are tested against the
// real servers rather than against Go's own TLS: each server's TLS library, its refusal
// of cleartext and its idea of a certificate are part of what is checked.
type TLSEnv struct {
	Env                // DatabaseURL is the owner's, with sslmode=verify-full and the CA
	CAFile      string // PEM of the test's CA
	CA          *x509.CertPool
	CertFile    string // a certificate for 127.0.0.1, localhost and TLSOptions.Host the CA
	KeyFile     string // signed, and its key: the servers' own, and serve's
	RedisAddr   string // host:port of the TLS port; there is no other
	PostgresURL string // the cluster's superuser, over TLS
}

// TLSOptions puts the TLS stack somewhere other than this host's loopback: on another
// "host" (a network namespace, TestWorkersOnOtherHosts), listening on its address.
type TLSOptions struct {
	// Host is the address the servers listen on, which their certificate names beside
	// 127.0.0.1 and localhost; "" is 127.0.0.1. The test process must reach it.
	Host string
	// Exec is the command each server runs under, e.g. ip netns exec NS; a PostgreSQL
	// run as root changes to the postgres user after it (setpriv), inside the namespace.
	Exec []string
	// Clients is the network, in CIDR notation, that PostgreSQL admits (hostssl lines);
	// "" is Host alone.
	Clients string
}

// Vars returns the environment that points chartscan at the stack, TLS settings included.
func (e TLSEnv) Vars() []string {
	return append(e.Env.Vars(), "MINIO_USE_SSL=true", "CHARTSCAN_MINIO_CA="+e.CAFile, "CHARTSCAN_REDIS_CA="+e.CAFile)
}

// Component roles the cluster gets, as deploy/up.sh makes them on the local stack.
var tlsRoles = []string{"chartscan_serve", "chartscan_worker", "chartscan_cli"}

// NewTLS starts the TLS stack for t and stops it when t ends. A server binary that
// cannot be found fails the test (deploy/install.sh installs them); only -short skips.
func NewTLS(t testing.TB) TLSEnv {
	t.Helper()
	return NewTLSWith(t, TLSOptions{})
}

// NewTLSWith is NewTLS on the address and under the command o names.
func NewTLSWith(t testing.TB, o TLSOptions) TLSEnv {
	t.Helper()
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Clients == "" {
		bits := 32
		if strings.Contains(o.Host, ":") {
			bits = 128
		}
		o.Clients = fmt.Sprintf("%s/%d", o.Host, bits)
	}
	if testing.Short() {
		t.Skip("integration test: starts its own Redis, PostgreSQL and MinIO")
	}
	// The PostgreSQL user must reach its data directory: not t.TempDir, which is private.
	dir, err := os.MkdirTemp("", "chartscan-tls-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })

	e := TLSEnv{Env: Env{Bucket: "chartscan", AccessKey: "chartscan", SecretKey: "chartscan-tls-test-secret"}}
	caPEM, certPEM, keyPEM := makeCerts(t, net.ParseIP(o.Host))
	e.CAFile = writeFile(t, dir, "ca.pem", caPEM, 0o644)
	e.CertFile = writeFile(t, dir, "server.crt", certPEM, 0o644)
	e.KeyFile = writeFile(t, dir, "server.key", keyPEM, 0o600)
	e.CA = x509.NewCertPool()
	e.CA.AppendCertsFromPEM(caPEM)

	bins := map[string]string{}
	for _, name := range []string{"redis-server", "initdb", "postgres", "minio"} {
		p, err := serverBinary(name)
		if err != nil {
			t.Fatalf("%v — run deploy/install.sh (make up does)", err)
		}
		bins[name] = p
	}
	ports := freePorts(t, 4)
	e.RedisAddr = net.JoinHostPort(o.Host, ports[0])
	pgAddr := net.JoinHostPort(o.Host, ports[1])
	e.MinIO = net.JoinHostPort(o.Host, ports[2])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The three start at once: MinIO and initdb take seconds each.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		errs[0] = e.startRedis(ctx, t, o, bins["redis-server"], dir, ports[0])
	}()
	go func() {
		defer wg.Done()
		errs[1] = e.startPostgres(ctx, t, o, bins["initdb"], bins["postgres"], dir, pgAddr)
	}()
	go func() {
		defer wg.Done()
		errs[2] = e.startMinIO(ctx, t, o, bins["minio"], dir, ports[3], caPEM, certPEM, keyPEM)
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return e
}

// makeCerts makes a CA and a server certificate it signs, for 127.0.0.1, localhost and
// host (if not nil), valid for the hour around now.
func makeCerts(t testing.TB, host net.IP) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chartscan test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	if host != nil && !host.IsLoopback() {
		ips = append(ips, host)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ips[len(ips)-1].String()},
		IPAddresses: ips, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func writeFile(t testing.TB, dir, name string, b []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverBinary finds a server the way deploy/up.sh does: MinIO where deploy/env.sh says
// install.sh builds it (under the cache, ~/.cache/chartscan), PostgreSQL's in the newest
// /usr/lib/postgresql/*/bin, the rest on PATH.
func serverBinary(name string) (string, error) {
	switch name {
	case "minio":
		_, self, _, _ := runtime.Caller(0)
		envSh := filepath.Join(filepath.Dir(self), "..", "..", "deploy", "env.sh")
		out, err := exec.Command("bash", "-c", `. "$1" && printf %s "$MINIO_BIN"`, "bash", envSh).Output()
		if err != nil {
			return "", fmt.Errorf("minio: cannot read its path from deploy/env.sh: %v", err)
		}
		if _, err := os.Stat(string(out)); err != nil {
			return "", fmt.Errorf("minio: not at %s, where deploy/env.sh puts it", out)
		}
		return string(out), nil
	case "initdb", "postgres":
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
		if len(dirs) == 0 {
			return "", fmt.Errorf("%s: no /usr/lib/postgresql/*/bin", name)
		}
		p := filepath.Join(dirs[len(dirs)-1], name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: not at %s", name, p)
		}
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: not on PATH", name)
	}
	return p, nil
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// freePorts returns n loopback ports free a moment ago.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// server is one started server process and its output, for the failure message.
type server struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail is the end of the output: what says why a server did not start.
func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > 3000 {
		s = "…" + s[len(s)-3000:]
	}
	return s
}

// start runs a server until t ends; stop is the signal that shuts it down cleanly. The
// child dies with the test process if that is killed (Pdeathsig). wrap, if not empty, is
// the command it runs under (ip netns exec NS, which execs it: the same process).
func start(t testing.TB, name string, stop syscall.Signal, cred *syscall.Credential, env []string, wrap []string, bin string, args ...string) (*server, error) {
	argv := append(append(append([]string{}, wrap...), bin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", name, err)
	}
	s := &server{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-s.done
		}
	})
	return s, nil
}

// wait calls ready until it succeeds, the server exits or ctx ends.
func (s *server) wait(ctx context.Context, ready func(context.Context) error) error {
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited while starting: %v\n%s", s.name, s.cmd.ProcessState, s.out.tail())
		case <-ctx.Done():
			return fmt.Errorf("%s did not become ready: %v\n%s", s.name, last, s.out.tail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// redisPassword is the TLS stack's Redis password (requirepass), in RedisURL.
const redisPassword = "chartscan-redis-tls-test"

func (e *TLSEnv) startRedis(ctx context.Context, t testing.TB, o TLSOptions, bin, dir, port string) error {
	data := filepath.Join(dir, "redis")
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	s, err := start(t, "redis-server", syscall.SIGTERM, nil, os.Environ(), o.Exec, bin,
		"--port", "0", "--tls-port", port, "--bind", o.Host, "--dir", data,
		"--tls-cert-file", e.CertFile, "--tls-key-file", e.KeyFile, "--tls-ca-cert-file", e.CAFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
		// A password, as Security asks of a production Redis: and without one, Redis's
		// protected mode refuses every client that is not on loopback.
		"--requirepass", redisPassword)
	if err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: e.RedisAddr, Password: redisPassword, TLSConfig: &tls.Config{RootCAs: e.CA, MinVersion: tls.VersionTLS12}})
	defer c.Close()
	if err := s.wait(ctx, func(ctx context.Context) error { return c.Ping(ctx).Err() }); err != nil {
		return err
	}
	e.RedisURL = "rediss://:" + redisPassword + "@" + e.RedisAddr + "/0"
	return nil
}

// startPostgres makes a cluster with ssl=on and a pg_hba.conf of hostssl lines only,
// its owner role and database, and the component roles. As root, initdb and postgres run
// as the postgres user, which PostgreSQL insists on (deploy/up.sh does the same).
func (e *TLSEnv) startPostgres(ctx context.Context, t testing.TB, o TLSOptions, initdb, postgres, dir, addr string) error {
	var cred *syscall.Credential
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("postgres: running as root needs the postgres user (Debian's package makes it): %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "pg")
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	const superPassword = "postgres-tls-test"
	pwfile := filepath.Join(dir, "pg-password")
	if err := os.WriteFile(pwfile, []byte(superPassword+"\n"), 0o644); err != nil {
		return err
	}
	if uid >= 0 {
		os.Chown(data, uid, gid)
	}
	init := exec.CommandContext(ctx, initdb, "-D", data, "-U", "postgres", "--auth=scram-sha-256", "--pwfile="+pwfile,
		"--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := init.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The key must be the server user's and private, or PostgreSQL refuses it.
	for _, f := range []struct{ src, dst string }{{e.CertFile, "server.crt"}, {e.KeyFile, "server.key"}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		p := filepath.Join(data, f.dst)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return err
		}
		if uid >= 0 {
			os.Chown(p, uid, gid)
		}
	}
	// Only TLS connections are admitted: a cleartext one finds no entry.
	hba := filepath.Join(data, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("hostssl all all "+o.Clients+" scram-sha-256\n"), 0o600); err != nil {
		return err
	}
	if uid >= 0 {
		os.Chown(hba, uid, gid)
	}
	host, port, _ := net.SplitHostPort(addr)
	// Under a wrapper (ip netns exec, which needs root) the user changes after it.
	wrap, runCred := o.Exec, cred
	if len(o.Exec) > 0 && cred != nil {
		wrap = append(append([]string{}, o.Exec...), "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--pdeathsig=KILL")
		runCred = nil
	}
	s, err := start(t, "postgres", syscall.SIGINT, runCred, os.Environ(), wrap, postgres, "-D", data,
		"-c", "listen_addresses="+host, "-p", port, "-c", "unix_socket_directories=",
		"-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key",
		"-c", "ssl_min_protocol_version=TLSv1.2", "-c", "max_connections=100",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	if err != nil {
		return err
	}
	tlsQuery := "sslmode=verify-full&sslrootcert=" + url.QueryEscape(e.CAFile)
	e.PostgresURL = "postgres://postgres:" + superPassword + "@" + addr + "/postgres?" + tlsQuery
	var conn *pgx.Conn
	err = s.wait(ctx, func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, e.PostgresURL)
		conn = c
		return err
	})
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// As deploy/up.sh: the owner, who may create databases, owns chartscan's; the
	// component roles may only log in, and migrate grants them the rest.
	stmts := []string{"CREATE ROLE chartscan LOGIN PASSWORD 'chartscan' CREATEDB", "CREATE DATABASE chartscan OWNER chartscan"}
	for _, r := range tlsRoles {
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", r, strings.ReplaceAll(r, "_", "-")+"-local"))
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: %s: %v", q, err)
		}
	}
	e.DatabaseURL = "postgres://chartscan:chartscan@" + addr + "/chartscan?" + tlsQuery
	return nil
}

// startMinIO runs MinIO with the certificate in its certs directory, which makes it
// serve HTTPS only, and the local stack's static KMS key, so MINIO_SSE=s3 works as there.
func (e *TLSEnv) startMinIO(ctx context.Context, t testing.TB, o TLSOptions, bin, dir, consolePort string, caPEM, certPEM, keyPEM []byte) error {
	certs := filepath.Join(dir, "minio-certs")
	if err := os.MkdirAll(filepath.Join(certs, "CAs"), 0o700); err != nil {
		return err
	}
	// Not writeFile: this runs beside the test's goroutine, which alone may fail it.
	for _, f := range []struct {
		path string
		b    []byte
	}{{filepath.Join(certs, "public.crt"), certPEM}, {filepath.Join(certs, "private.key"), keyPEM}, {filepath.Join(certs, "CAs", "ca.pem"), caPEM}} {
		if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
			return err
		}
	}
	env := append(os.Environ(), "MINIO_ROOT_USER="+e.AccessKey, "MINIO_ROOT_PASSWORD="+e.SecretKey, "MINIO_BROWSER=off",
		"MINIO_KMS_SECRET_KEY=chartscan-tls-test:Y2hhcnRzY2FuLWxvY2FsLWttcy1rZXktMzItYnl0ZXM=")
	s, err := start(t, "minio", syscall.SIGTERM, nil, env, o.Exec, bin, "server", filepath.Join(dir, "minio-data"), "--quiet",
		"--certs-dir", certs, "--address", e.MinIO, "--console-address", net.JoinHostPort(o.Host, consolePort))
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CA}}}
	defer hc.CloseIdleConnections()
	return s.wait(ctx, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+e.MinIO+"/minio/health/ready", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
}
