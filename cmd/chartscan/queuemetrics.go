package main

import (
	"slices"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chartscan/chartscan/worker"
)

// queueCollector reports the depth and latency of the task queues, read from Redis at
// each scrape: what an autoscaler adds or removes workers by (the ocr queue above all).
type queueCollector struct {
	insp    *asynq.Inspector
	tasks   *prometheus.Desc
	latency *prometheus.Desc
}

func newQueueCollector(insp *asynq.Inspector) *queueCollector {
	return &queueCollector{
		insp: insp,
		tasks: prometheus.NewDesc("chartscan_queue_tasks", "Tasks in a queue by state (pending, active, scheduled, retry, archived).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("chartscan_queue_latency_seconds", "How long the oldest pending task of a queue has waited.",
			[]string{"queue"}, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.latency
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	// Redis unreachable, or a queue gone between the two calls: those series are left
	// out of this scrape rather than failing the server's other metrics with it.
	known, err := c.insp.Queues()
	if err != nil {
		return
	}
	for q := range worker.Queues {
		// The ocr queue is the sum of its shards (fairqueue.go), its latency the longest.
		parts := []string{q}
		if q == worker.QueueOCR {
			parts = ocrQueues()
		}
		info := &asynq.QueueInfo{} // a queue no task was ever put on is empty
		for _, part := range parts {
			if !slices.Contains(known, part) {
				continue
			}
			pi, perr := c.insp.GetQueueInfo(part)
			if perr != nil {
				err = perr
				break
			}
			info.Pending, info.Active, info.Scheduled = info.Pending+pi.Pending, info.Active+pi.Active, info.Scheduled+pi.Scheduled
			info.Retry, info.Archived = info.Retry+pi.Retry, info.Archived+pi.Archived
			info.Latency = max(info.Latency, pi.Latency)
		}
		if err != nil {
			err = nil
			continue
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), q, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}
