package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/synth"
	"github.com/chartscan/chartscan/worker"
)

// The matching benchmark's tuning and its honest report. The one setting tuned is the
// auto-filing threshold (Model.AutoWeight): each benchmark run replays its batch's
// filing under every threshold of tuneGrid and keeps the counts by layout family. The
// leave-one-family-out figure then scores each family with the threshold a tuner would
// have chosen while that family was absent from every run — the lowest threshold above
// which the other families show no misfile at all, plus tuneSafety bits — so a family
// the tuning never saw is scored as a new hospital's forms would be.

// tuneGrid is the thresholds replayed, in bits.
var tuneGrid = func() []float64 {
	var g []float64
	for w := 10.0; w <= 44; w++ {
		g = append(g, w)
	}
	return g
}()

// tuneSafety is the margin the tuner adds above the lowest safe threshold it saw.
const tuneSafety = 2.0

// benchResult is one benchmark run, written by evaluate --json and read by --combine.
type benchResult struct {
	Name       string                            `json:"name"`
	AutoWeight float64                           `json:"auto_weight"` // the threshold the run filed with
	Eval       evaluation                        `json:"evaluation"`
	Grid       map[string]map[string]*kindCounts `json:"grid,omitempty"` // threshold → layout → counts
}

// replayGrid decides every document of the batch again under each threshold of the
// grid, without saving, and evaluates each replay by layout family. Look-ups are cached:
// the threshold does not change them.
func replayGrid(ctx context.Context, a *app, batch string, truth *synth.Truth) (map[string]map[string]*kindCounts, error) {
	w, err := worker.New(worker.Config{Store: a.db, Model: a.cfg.Model, Pages: a.cfg.Pages, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	docs, err := a.db.BatchDocuments(ctx, batch)
	if err != nil {
		return nil, err
	}
	freqs := indexer.SurnameShares{}
	cache := map[string][]chartscan.Patient{}
	lookup := func(e indexer.Evidence) ([]chartscan.Patient, error) {
		k := fmt.Sprintf("%+v", a.cfg.Model.Query(e))
		if p, ok := cache[k]; ok {
			return p, nil
		}
		p, err := w.Lookup(ctx, e, freqs)
		if err == nil {
			cache[k] = p
		}
		return p, err
	}
	out := map[string]map[string]*kindCounts{}
	for _, aw := range tuneGrid {
		m := a.cfg.Model
		m.AutoWeight = aw
		var rows []storage.ExportRow
		for _, d := range docs {
			pages, filed, err := w.Replay(ctx, d.ID, m, lookup, freqs)
			if err != nil {
				return nil, err
			}
			for i, f := range filed {
				r := storage.ExportRow{File: d.FileName, DocumentID: d.ID, Page: pages[i].Number, Status: string(f.Status)}
				if f.MRN != "" {
					mrn := f.MRN
					r.MRN = &mrn
				}
				rows = append(rows, r)
			}
		}
		out[weightKey(aw)] = evaluate(rows, truth).Layouts
	}
	return out, nil
}

func weightKey(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) }

// writeBenchResult writes one run's result as JSON.
func writeBenchResult(path string, r benchResult) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// combineBench reads the runs' results and prints the table by layout family over all
// runs, then the leave-one-family-out table. It reports whether any page was filed to a
// wrong patient (or any not-in-EMPI page filed) in either.
func combineBench(out io.Writer, paths []string) (misfiled bool, err error) {
	var runs []benchResult
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		var r benchResult
		if err := json.Unmarshal(b, &r); err != nil {
			return false, chartscan.Errorf(chartscan.EInvalid, "%s is not a benchmark result: %v", p, err)
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return false, chartscan.Errorf(chartscan.EInvalid, "no benchmark results to combine")
	}
	families := map[string]bool{}
	overall := map[string]*kindCounts{}
	for _, r := range runs {
		for f, c := range r.Eval.Layouts {
			families[f] = true
			if overall[f] == nil {
				overall[f] = &kindCounts{}
			}
			overall[f].add(c)
		}
	}
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, f)
	}
	slices.Sort(names)

	fmt.Fprintf(out, "Over %d runs (", len(runs))
	for i, r := range runs {
		if i > 0 {
			fmt.Fprint(out, ", ")
		}
		fmt.Fprint(out, r.Name)
	}
	fmt.Fprintf(out, "), filed with the threshold of the run (%s bits):\n\n", weightKey(runs[0].AutoWeight))
	total := printFamilies(out, names, func(f string) (string, *kindCounts) { return "", overall[f] }, false)
	misfiled = total.AutoWrong > 0

	// Leave one family out.
	if runs[0].Grid == nil {
		return misfiled, nil
	}
	fmt.Fprintf(out, "\nLeave one family out: each family filed with the threshold tuned on the others alone\n")
	fmt.Fprintf(out, "(the lowest threshold from which on they show no misfile, plus %s bits):\n\n", weightKey(tuneSafety))
	chosen := map[string]float64{}
	for _, f := range names {
		chosen[f] = tuneWithout(runs, f)
	}
	held := printFamilies(out, names, func(f string) (string, *kindCounts) {
		c := &kindCounts{}
		for _, r := range runs {
			if g := r.Grid[weightKey(chosen[f])][f]; g != nil {
				c.add(g)
			}
		}
		return weightKey(chosen[f]), c
	}, true)
	return misfiled || held.AutoWrong > 0, nil
}

// tuneWithout returns the threshold the tuner chooses from every run's replays of all
// families but left: the lowest grid threshold from which on none of them shows a
// misfile, plus tuneSafety (the grid's top when no threshold is safe).
func tuneWithout(runs []benchResult, left string) float64 {
	safeFrom := tuneGrid[len(tuneGrid)-1]
	for i := len(tuneGrid) - 1; i >= 0; i-- {
		wrong := 0
		for _, r := range runs {
			for f, c := range r.Grid[weightKey(tuneGrid[i])] {
				if f != left {
					wrong += c.AutoWrong
				}
			}
		}
		if wrong > 0 {
			break
		}
		safeFrom = tuneGrid[i]
	}
	return min(safeFrom+tuneSafety, tuneGrid[len(tuneGrid)-1])
}

// printFamilies prints one row per family and a total; withWeight adds the threshold
// column. It returns the total.
func printFamilies(out io.Writer, names []string, row func(string) (string, *kindCounts), withWeight bool) kindCounts {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "layout\t"
	if withWeight {
		head += "threshold\t"
	}
	fmt.Fprintln(tw, head+"pages\tin EMPI\tauto right\tshare\tauto wrong\tnot-in-EMPI filed\treview\tunmatched\tfailed\t")
	var t kindCounts
	line := func(name, weight string, c *kindCounts) {
		in := c.Pages - c.NotInEMPI
		share := 0.0
		if in > 0 {
			share = 100 * float64(c.AutoRight) / float64(in)
		}
		// AutoWrong counts both kinds of wrong filing; the table splits them.
		fmt.Fprintf(tw, "%s\t", name)
		if withWeight {
			fmt.Fprintf(tw, "%s\t", weight)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t%d\t%d\t\n", c.Pages, in, c.AutoRight, share,
			c.AutoWrong-c.nieFiled(), c.nieFiled(), c.Review, c.Unmatched, c.Failed)
	}
	for _, f := range names {
		w, c := row(f)
		line(f, w, c)
		t.add(c)
	}
	line("all", "", &t)
	tw.Flush()
	return t
}
