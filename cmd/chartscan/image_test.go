package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podmanRun is how every container runs on this host: runc (crun refuses its hybrid
// cgroups) and explicit limits.
var podmanRun = []string{"--runtime", "runc", "run", "--ulimit", "nofile=1024:20000", "--ulimit", "nproc=1024:4096"}

// TestContainerImageFilesAChart builds the image (Dockerfile, through deploy/image.sh:
// a debootstrapped base and this host's Go, cached, so a second run rebuilds only what
// changed) and runs its worker — non-root, read-only root filesystem, no capabilities —
// against the local stack: the sample charts are filed from it as from a worker on the
// host, its HEALTHCHECK passes, and SIGTERM stops it cleanly.
func TestContainerImageFilesAChart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the container image")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CHARTSCAN_TEST_SERVICES") == "required" {
			t.Fatal("podman is missing: deploy/install.sh installs it")
		}
		t.Skip("podman is missing (deploy/install.sh installs it)")
	}
	s := newStack(t)
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	start := time.Now()
	build := exec.CommandContext(ctx, "../../deploy/image.sh", "localhost/chartscan:test")
	var out, errb bytes.Buffer
	build.Stdout, build.Stderr = &out, &errb
	if err := build.Run(); err != nil {
		t.Fatalf("deploy/image.sh: %v\n%s", err, errb.String())
	}
	image := strings.TrimSpace(out.String())
	t.Logf("image %s built in %v", image, time.Since(start).Round(time.Second))

	// The worker's metrics on a port of its own: with the host's network, the default
	// 9464 may be another worker's, and the healthcheck would ask that one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := ln.Addr().String()
	ln.Close()

	name := "chartscan-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	args := append(append([]string{}, podmanRun...), "-d", "--name", name,
		"--network", "host", "--read-only", "--tmpfs", "/tmp:rw,size=512m,mode=1777",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-e", "CHARTSCAN_CONCURRENCY=1", "-e", "CHARTSCAN_LOG_LEVEL=debug", "-e", "CHARTSCAN_WORKER_METRICS_ADDR="+metrics)
	for _, kv := range []string{"DATABASE_URL", "REDIS_URL", "MINIO_BUCKET", "MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} {
		args = append(args, "-e", kv+"="+s.getenv(kv))
	}
	args = append(args, image) // CMD: worker
	if b, err := exec.Command("podman", args...).CombinedOutput(); err != nil {
		t.Fatalf("podman run: %v\n%s", err, b)
	}
	logs := func() string {
		b, _ := exec.Command("podman", "logs", name).CombinedOutput()
		return string(b)
	}
	t.Cleanup(func() {
		s.logs.Write([]byte(logs()))
		exec.Command("podman", "rm", "-f", "-t", "0", name).Run()
	})

	// Who it runs as and what it may write.
	if b, err := exec.Command("podman", "inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", name).Output(); err != nil ||
		strings.TrimSpace(string(b)) != "10001:10001 true" {
		t.Errorf("container user and read-only root: %q (%v), want \"10001:10001 true\"", b, err)
	}

	// Its HEALTHCHECK (chartscan healthcheck: the worker's metrics) passes once it is up.
	healthy := false
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if exec.Command("podman", "healthcheck", "run", name).Run() == nil {
			healthy = true
			break
		}
	}
	if !healthy {
		t.Fatalf("the container's healthcheck never passed; its log:\n%s", logs())
	}

	// The sample charts, filed by the container's worker alone (this test's Redis
	// database has no other), as a worker on the host files them.
	o, errs, code := s.run("ingest", "--wait", "../../testdata/charts")
	if code != 0 {
		t.Fatalf("ingest --wait: exit %d\n%s\ncontainer log:\n%s", code, errs, logs())
	}
	batch := strings.TrimSpace(o)
	checkAgainstTruth(t, s.export("--batch", batch), readTruth(t, "../../testdata/charts/truth.json"), true)
	if !strings.Contains(logs(), `"msg":"worker started"`) {
		t.Errorf("the container's log has no worker start (JSON, as the image sets):\n%s", logs())
	}

	// SIGTERM: the worker hands back and exits 0 within its grace.
	if b, err := exec.Command("podman", "stop", "-t", "45", name).CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, b)
	}
	if b, err := exec.Command("podman", "inspect", "--format", "{{.State.ExitCode}}", name).Output(); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("the worker exited %q after SIGTERM (%v), want 0; its log:\n%s", b, err, logs())
	}
}

// The image's HEALTHCHECK asks what the container runs, on its own loopback.
func TestHealthcheckAsksTheContainersCommand(t *testing.T) {
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"CHARTSCAN_HTTP_ADDR": "0.0.0.0:8080", "CHARTSCAN_WORKER_METRICS_ADDR": "0.0.0.0:9464"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ command, tlsCert, want string }{
		{"serve", "", "http://127.0.0.1:8080/api/v1/health"},
		{"serve", "/etc/chartscan/tls/tls.crt", "https://127.0.0.1:8080/api/v1/health"},
		{"worker", "", "http://127.0.0.1:9464/metrics"},
		{"intake", "", ""},
		{"migrate", "", ""},
	} {
		cfg.TLSCert = c.tlsCert
		if got := healthURL(cfg, c.command); got != c.want {
			t.Errorf("%s (certificate %q): %q, want %q", c.command, c.tlsCert, got, c.want)
		}
	}
}
