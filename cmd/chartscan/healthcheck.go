package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is the container image's HEALTHCHECK (Dockerfile): it asks the
// container's own chartscan process whether it answers — serve's /api/v1/health (which
// checks PostgreSQL and Redis), a worker's metrics endpoint — with no curl in the image.
func newHealthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck [URL]",
		Short: "Exit 0 if this container's serve or worker answers on its address (the image's HEALTHCHECK), or URL answers 2xx",
		Long: "With no URL, the command the container runs (its process 1) says what to ask: serve, its " +
			"/api/v1/health on CHARTSCAN_HTTP_ADDR (HTTPS when CHARTSCAN_TLS_CERT is set); worker, its " +
			"metrics on CHARTSCAN_WORKER_METRICS_ADDR; any other command is healthy while it runs.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := ""
			if len(args) == 1 {
				url = args[0]
			} else {
				cfg, err := loadConfig(os.Getenv)
				if err != nil {
					return err
				}
				url = healthURL(cfg, mainCommand())
				if url == "" {
					return nil
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return probe(ctx, url)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// mainCommand is the chartscan subcommand process 1 runs ("worker", "serve", …), or "".
func mainCommand() string {
	b, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		return ""
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	for _, a := range args[1:] {
		if s := string(a); !strings.HasPrefix(s, "-") {
			return s
		}
	}
	return ""
}

// healthURL is what a healthy process running command answers on, or "" when it serves
// nothing to ask.
func healthURL(cfg config, command string) string {
	local := func(addr string) string {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return addr
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		return net.JoinHostPort(host, port)
	}
	switch command {
	case "serve":
		scheme := "http"
		if cfg.TLSCert != "" {
			scheme = "https"
		}
		return scheme + "://" + local(cfg.HTTPAddr) + "/api/v1/health"
	case "worker":
		if cfg.WorkerMetrics == "" {
			return ""
		}
		return "http://" + local(cfg.WorkerMetrics) + "/metrics"
	}
	return ""
}

func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The process asked is this container's own, on its own address: its certificate
	// names the service, not that address, and nothing secret is sent.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	return nil
}
