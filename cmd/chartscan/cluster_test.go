package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chartscan/chartscan/internal/stacktest"
	"github.com/chartscan/chartscan/storage"
)

// TestWorkersOnOtherHosts is issue 15's item 2: chartscan on three "hosts" — Linux
// network namespaces the test makes, joined by a bridge in a fourth — with Redis,
// PostgreSQL and MinIO (TLS only, certificates naming the services host's address) on
// one and a worker on each of the other two; the CLI runs from the test's own namespace,
// a fourth address on the same network. Mid-batch, worker host A's link is cut and every
// process on it killed with SIGKILL (the worker and its OCR children): its connections
// are never closed, as when a host dies. The batch must complete on host B with every
// page filed exactly once and none failed. Nothing reaches a store over loopback.
//
// It needs root (ip netns); `make test` and CI run as root. CHARTSCAN_CLUSTER_DOCUMENTS
// sizes the batch (4 pages each; default 5).
func TestWorkersOnOtherHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts its own stores in network namespaces")
	}
	needNetns(t)
	start := time.Now()
	lab := newNetLab(t)
	svc := lab.host("svc", 2)
	hostA := lab.host("wa", 3)
	hostB := lab.host("wb", 4)
	lab.link(lab.prefix+"h", "", 1) // the test's own namespace: the operator's host
	t.Logf("network %s.0/24: stores on %s, workers on %s and %s, the CLI on %s.1", lab.net, svc.addr, hostA.addr, hostB.addr, lab.net)

	ts := stacktest.NewTLSWith(t, stacktest.TLSOptions{Host: svc.addr, Exec: svc.exec(), Clients: lab.net + ".0/24"})
	for _, u := range []string{ts.DatabaseURL, ts.RedisURL, ts.MinIO} {
		if strings.Contains(u, "127.0.0.1") || strings.Contains(u, "localhost") {
			t.Fatalf("a store is on loopback: %s", u)
		}
	}
	env := append(os.Environ(), ts.Vars()...)
	env = append(env, "OMP_THREAD_LIMIT=1", "CHARTSCAN_LOG_LEVEL=debug",
		"CHARTSCAN_WORKER_DATABASE_URL="+ts.RoleURL(storage.RoleWorker),
		"CHARTSCAN_CLI_DATABASE_URL="+ts.RoleURL(storage.RoleCLI))
	s := &stack{t: t, env: env, logs: &syncBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last lines the CLI logged:\n%s", tail(s.logs.String(), 40))
		}
	})
	s.mustRun("migrate")

	docs := 5
	if v := os.Getenv("CHARTSCAN_CLUSTER_DOCUMENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("CHARTSCAN_CLUSTER_DOCUMENTS=%q: want a number ≥ 2", v)
		}
		docs = n
	}
	dir := t.TempDir()
	s.mustRun("synth", "--identities", "../../testdata/identities/splink/fake_1000.csv", "--out", dir, "--seed", "15",
		"--documents", strconv.Itoa(docs), "--min-patients", "2", "--max-patients", "2", "--min-pages", "2", "--max-pages", "2",
		"--skew", "0.5", "--not-in-empi", "0")
	s.mustRun("records", "import", filepath.Join(dir, "empi.csv"))
	truth := readTruth(t, filepath.Join(dir, "truth.json"))
	total := 0
	for _, d := range truth.Documents {
		total += len(d.Pages)
	}
	t.Logf("stores up, schema and EMPI in, %d pages made: %v", total, time.Since(start).Round(time.Second))

	a := hostA.startWorker(t, s)
	b := hostB.startWorker(t, s)
	batch := strings.TrimSpace(s.mustRun("ingest", dir))
	started := time.Now()

	conn, err := pgx.Connect(context.Background(), ts.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	progress := func() (read, final int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE ocr_at IS NOT NULL OR status <> 'pending'),
			count(*) FILTER (WHERE status <> 'pending') FROM pages`).Scan(&read, &final); err != nil {
			t.Fatal(err)
		}
		return read, final
	}

	// Cut A once both hosts have read pages and a quarter of the batch is read: A holds
	// tasks then (one slot, always busy while pages wait).
	waitFor(t, 10*time.Minute, "both workers reading and a quarter of the pages read", func() bool {
		r, fin := progress()
		if fin == total {
			t.Fatalf("the batch finished before host A was cut (%d pages): it needs more pages", total)
		}
		return a.stagesSeen() > 0 && b.stagesSeen() > 0 && 4*r >= total
	})
	readAtCut, _ := progress()
	aStages := a.stagesSeen()
	lab.cut(hostA)
	a.killHost()
	t.Logf("%5.1fs  host A cut and its processes killed: %d of %d pages read", time.Since(started).Seconds(), readAtCut, total)
	if readAtCut >= total {
		t.Fatalf("all %d pages were read before the cut; the test needs a longer batch", total)
	}

	waitFor(t, 10*time.Minute, "every page and document final", func() bool {
		var docs, docsFinal int
		if _, fin := progress(); fin < total {
			return false
		}
		err := conn.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status IN ('done', 'failed')) FROM documents`).Scan(&docs, &docsFinal)
		return err == nil && docs == docsFinal
	})
	t.Logf("%5.1fs  every page final", time.Since(started).Seconds())
	if out, errs, code := s.run("status", "--wait", batch); code != 0 {
		t.Fatalf("status --wait: exit %d\n%s\n%s", code, out, errs)
	}

	// Host B did the rest; host A, cut off, did nothing more (its metrics are gone
	// with it, so the database says: pages read after the cut were read by B).
	if b.stagesSeen() == 0 {
		t.Error("host B's worker reports no stage")
	}
	if n := lab.pids(hostA); len(n) > 0 {
		t.Errorf("processes left on host A after the kill: %v", n)
	}

	// Every page exactly once: in the export, in pages, and in at most one live patient
	// document; none failed, none pending.
	rows := s.export("--batch", batch)
	seen := map[string]int{}
	failed, pending := 0, 0
	for _, r := range rows {
		seen[fmt.Sprintf("%s#%d", r.File, r.Page)]++
		switch r.Status {
		case "failed":
			failed++
			t.Errorf("%s page %d failed", r.File, r.Page)
		case "pending":
			pending++
		}
	}
	lost, duplicated := pending, 0
	for _, d := range truth.Documents {
		for i := range d.Pages {
			switch n := seen[fmt.Sprintf("%s#%d", d.File, i+1)]; {
			case n == 0:
				lost++
			case n > 1:
				duplicated += n - 1
			}
		}
	}
	var pageRows, filedTwice, autoUnfiled int
	if err := conn.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM pages),
		(SELECT count(*) FROM (SELECT 1 FROM patient_document_pages pp JOIN patient_documents pd USING (id, version)
			WHERE pd.state <> 'superseded' GROUP BY pp.document_id, pp.page_no HAVING count(*) > 1) x),
		(SELECT count(*) FROM pages p WHERE p.status = 'auto' AND NOT EXISTS (SELECT 1 FROM patient_document_pages pp
			JOIN patient_documents pd USING (id, version) WHERE pd.state <> 'superseded' AND pp.document_id = p.document_id AND pp.page_no = p.page_no))`).
		Scan(&pageRows, &filedTwice, &autoUnfiled); err != nil {
		t.Fatal(err)
	}
	summary := fmt.Sprintf("pages lost = %d, duplicated = %d, failed = %d; %d page rows, %d pages in two live patient documents, %d auto-filed pages in none",
		lost, duplicated, failed, pageRows, filedTwice, autoUnfiled)
	t.Log(summary)
	if lost+duplicated+failed > 0 || len(rows) != total || pageRows != total || filedTwice > 0 || autoUnfiled > 0 {
		t.Errorf("%s (%d exported, %d in the batch)", summary, len(rows), total)
	}
	checkAgainstTruth(t, rows, truth, false)
	if logs := a.logs.String() + b.logs.String(); strings.Contains(logs, "task archived without a recorded failure") {
		t.Error("a task was archived and its work failed by reconcile")
	}
	t.Logf("host A had %d stage observations at the cut; batch took %v, the whole test %v",
		aStages, time.Since(started).Round(time.Second), time.Since(start).Round(time.Second))
}

// needNetns skips the test unless this process may make network namespaces: root, with
// ip(8) and a kernel that has them. CI runs as root, so it runs there.
func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("TestWorkersOnOtherHosts needs root, to make network namespaces (ip netns); make test in CI runs as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("TestWorkersOnOtherHosts needs ip(8) (iproute2) for network namespaces")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) not found: PostgreSQL runs as its user inside a namespace through it")
	}
	probe := "csmh-probe-" + randHex(3)
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("no network namespaces here (ip netns add: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "del", probe).Run()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// netLab is the test's network: a bridge in a namespace of its own (lan), and a veth
// pair from each host's namespace to it. Everything it makes is named with prefix
// (csmh + random hex), and all of it, with every process in its namespaces, goes when
// the test ends.
type netLab struct {
	t      *testing.T
	prefix string
	net    string // the /24's first three octets: 10.x.y
	lan    string // the namespace holding the bridge
	hosts  []*labHost
}

type labHost struct {
	lab  *netLab
	ns   string
	addr string
	peer string // the veth end on the bridge: cutting the link downs it
}

func newNetLab(t *testing.T) *netLab {
	l := &netLab{t: t, prefix: "csmh" + randHex(2)}
	l.lan = l.prefix + "-lan"
	// A /24 of 10.200–250.x that this machine uses nowhere.
	routes, _ := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	addrs, _ := exec.Command("ip", "-4", "addr").CombinedOutput()
	for range 100 {
		a, _ := rand.Int(rand.Reader, big.NewInt(51))
		b, _ := rand.Int(rand.Reader, big.NewInt(254))
		cand := fmt.Sprintf("10.%d.%d", 200+a.Int64(), 1+b.Int64())
		if !strings.Contains(string(routes), cand+".") && !strings.Contains(string(addrs), cand+".") {
			l.net = cand
			break
		}
	}
	if l.net == "" {
		t.Fatal("no free 10.x.y.0/24 for the test's network")
	}
	t.Cleanup(l.teardown)
	l.ip("netns", "add", l.lan)
	l.ip("-n", l.lan, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.lan, "link", "set", "br0", "up")
	return l
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// host makes a namespace named prefix-name with address net.octet on the bridge.
func (l *netLab) host(name string, octet int) *labHost {
	l.t.Helper()
	ns := l.prefix + "-" + name
	l.ip("netns", "add", ns)
	h := &labHost{lab: l, ns: ns}
	l.hosts = append(l.hosts, h) // before the link: teardown kills what runs in it
	h.addr, h.peer = l.link(l.prefix+name, ns, octet)
	l.ip("-n", ns, "link", "set", "lo", "up")
	return h
}

// link makes a veth pair named base0 (in ns, "" the test's own) and base1 (on the
// bridge), gives base0 net.octet/24 and returns the address and base1.
func (l *netLab) link(base, ns string, octet int) (addr, peer string) {
	l.t.Helper()
	end, peer := base+"0", base+"1"
	l.ip("link", "add", end, "type", "veth", "peer", "name", peer)
	l.ip("link", "set", peer, "netns", l.lan)
	l.ip("-n", l.lan, "link", "set", peer, "master", "br0", "up")
	in := []string{}
	if ns != "" {
		l.ip("link", "set", end, "netns", ns)
		in = []string{"-n", ns}
	}
	addr = fmt.Sprintf("%s.%d", l.net, octet)
	l.ip(append(in, "addr", "add", addr+"/24", "dev", end)...)
	l.ip(append(in, "link", "set", end, "up")...)
	return addr, peer
}

// cut takes h's link down at the bridge: h's packets go nowhere, nothing is closed.
func (l *netLab) cut(h *labHost) {
	l.t.Helper()
	l.ip("-n", l.lan, "link", "set", h.peer, "down")
}

// pids lists the processes running in h's namespace.
func (l *netLab) pids(h *labHost) []int {
	out, _ := exec.Command("ip", "netns", "pids", h.ns).Output()
	var ps []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// teardown kills whatever still runs in the lab's namespaces, then deletes them (which
// deletes their veths and so the peers) and the test namespace's own veth.
func (l *netLab) teardown() {
	for _, h := range l.hosts {
		for _, p := range l.pids(h) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	}
	for _, h := range l.hosts {
		exec.Command("ip", "netns", "del", h.ns).Run()
	}
	exec.Command("ip", "netns", "del", l.lan).Run()
	exec.Command("ip", "link", "del", l.prefix+"h0").Run()
}

func (h *labHost) exec() []string { return []string{"ip", "netns", "exec", h.ns} }

// labWorker is `chartscan worker` on a lab host, one slot, its metrics on the host's
// address.
type labWorker struct {
	h       *labHost
	cmd     *exec.Cmd
	logs    *syncBuffer
	metrics string
	done    chan struct{}
}

func (h *labHost) startWorker(t *testing.T, s *stack) *labWorker {
	t.Helper()
	w := &labWorker{h: h, logs: &syncBuffer{}, metrics: "http://" + h.addr + ":9464/metrics", done: make(chan struct{})}
	w.cmd = exec.Command("ip", append(h.exec()[1:], binary, "worker")...)
	w.cmd.Env = append(append([]string{}, s.env...), "CHARTSCAN_CONCURRENCY=1", "CHARTSCAN_WORKER_METRICS_ADDR="+h.addr+":9464")
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(40 * time.Second):
			syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
			<-w.done
		}
		if t.Failed() {
			t.Logf("worker on %s, its last lines:\n%s", h.ns, tail(w.logs.String(), 40))
		}
	})
	return w
}

// killHost kills every process of the worker's host with SIGKILL: the worker's process
// group (it and its OCR children), then anything else the namespace still runs.
func (w *labWorker) killHost() {
	syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	<-w.done
	for _, p := range w.h.lab.pids(w.h) {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// stagesSeen is how many stage timings the worker's metrics endpoint (on its host's
// address) has counted: more than 0 once it has handled a page. 0 if it cannot be read.
func (w *labWorker) stagesSeen() int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(w.metrics)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "chartscan_stage_seconds_count{") {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		n += int(v)
	}
	return n
}
