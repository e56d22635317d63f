package web

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics. Labels are route patterns, actions and
// outcomes: never anything from a path or a query, which may hold PHI.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	uploads   *prometheus.CounterVec
	logins    *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry, store Store) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chartscan_http_requests_total",
			Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chartscan_http_request_duration_seconds",
			Help: "HTTP request latency by route pattern.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chartscan_review_decisions_total",
			Help: "Reviewer decisions by action and outcome (ok, conflict, invalid, …)."}, []string{"action", "outcome"}),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chartscan_uploads_total",
			Help: "Files uploaded over HTTP by outcome."}, []string{"outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chartscan_logins_total",
			Help: "Sign-in attempts by outcome (ok, denied, rate_limited)."}, []string{"outcome"}),
	}
	reg.MustRegister(m.requests, m.duration, m.decisions, m.uploads, m.logins)
	if store != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "chartscan_review_queue_pages",
			Help: "Pages waiting for a reviewer."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := store.ReviewCount(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	// A registry shared with other code may hold these already; that is fine.
	reg.Register(collectors.NewGoCollector())
	reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
