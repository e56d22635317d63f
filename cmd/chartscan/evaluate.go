package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/synth"
	"github.com/chartscan/chartscan/worker"
)

// evaluation compares what chartscan filed with a generator's ground truth.
type evaluation struct {
	Kinds map[string]*kindCounts
	// Layouts counts the same pages by the layout family of the page (a continuation
	// page: of the document it continues).
	Layouts map[string]*kindCounts
	// Problems lists what must never happen (a misfile, a page missing or exported
	// twice), one sentence each, with file and page but no PHI beyond the MRN.
	Problems []string
}

type kindCounts struct {
	Pages, AutoRight, AutoWrong, Review, Unmatched, Failed, Other int
	// NotInEMPI counts the pages whose patient is not in the EMPI (Layouts only; Kinds
	// has a kind of its own for them).
	NotInEMPI int `json:",omitempty"`
	// NotInEMPIFiled counts those of them filed to someone (Layouts only), which
	// AutoWrong also counts.
	NotInEMPIFiled int `json:",omitempty"`
}

func (c *kindCounts) nieFiled() int { return c.NotInEMPIFiled }

func (c *kindCounts) add(o *kindCounts) {
	c.Pages += o.Pages
	c.AutoRight += o.AutoRight
	c.AutoWrong += o.AutoWrong
	c.Review += o.Review
	c.Unmatched += o.Unmatched
	c.Failed += o.Failed
	c.Other += o.Other
	c.NotInEMPI += o.NotInEMPI
	c.NotInEMPIFiled += o.NotInEMPIFiled
}

// evaluate checks export rows against truth: every page present once; a page auto-filed
// to anyone but its patient — or at all when its patient is not in the EMPI — is a
// problem.
func evaluate(rows []storage.ExportRow, truth *synth.Truth) evaluation {
	type key struct {
		file string
		page int
	}
	ev := evaluation{Kinds: map[string]*kindCounts{}, Layouts: map[string]*kindCounts{}}
	got := map[key]storage.ExportRow{}
	for _, r := range rows {
		k := key{r.File, r.Page}
		if _, dup := got[k]; dup {
			ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d exported twice", r.File, r.Page))
		}
		got[k] = r
	}
	want := 0
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			want++
			kind := p.Kind
			if !p.InEMPI {
				kind = "not_in_empi"
			}
			c := ev.Kinds[kind]
			if c == nil {
				c = &kindCounts{}
				ev.Kinds[kind] = c
			}
			layout := p.Layout
			if layout == "" {
				layout = "unknown"
			}
			lc := ev.Layouts[layout]
			if lc == nil {
				lc = &kindCounts{}
				ev.Layouts[layout] = lc
			}
			c.Pages++
			lc.Pages++
			if !p.InEMPI {
				lc.NotInEMPI++
			}
			r, ok := got[key{d.File, p.Page}]
			if !ok {
				ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d missing from the export", d.File, p.Page))
				continue
			}
			mrn := ""
			if r.MRN != nil {
				mrn = *r.MRN
			}
			// The page counts once by kind and once by layout.
			var one kindCounts
			switch chartscan.PageStatus(r.Status) {
			case chartscan.StatusAuto, chartscan.StatusConfirmed:
				switch {
				case !p.InEMPI:
					one.AutoWrong, one.NotInEMPIFiled = 1, 1
					ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d: patient not in the EMPI filed to %s", d.File, p.Page, mrn))
				case mrn != p.MRN:
					one.AutoWrong = 1
					ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d: filed to %s, truth %s", d.File, p.Page, mrn, p.MRN))
				default:
					one.AutoRight = 1
				}
			case chartscan.StatusReview:
				one.Review = 1
			case chartscan.StatusUnmatched:
				one.Unmatched = 1
			case chartscan.StatusFailed:
				one.Failed = 1
			default:
				one.Other = 1
			}
			lc.add(&one)
			one.NotInEMPIFiled = 0 // Kinds has a kind of its own for those pages
			c.add(&one)
		}
	}
	if len(rows) != want {
		ev.Problems = append(ev.Problems, fmt.Sprintf("export has %d rows, truth has %d pages", len(rows), want))
	}
	return ev
}

// inEMPIAutoShare is the share of pages whose patient is in the EMPI that were
// auto-filed to that patient (continuation pages included).
func (ev evaluation) inEMPIAutoShare() (right, pages int) {
	for k, c := range ev.Kinds {
		if k != "not_in_empi" {
			right += c.AutoRight
			pages += c.Pages
		}
	}
	return right, pages
}

func (ev evaluation) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page kind\tpages\tauto right\tauto wrong\treview\tunmatched\tfailed\t")
	kinds := make([]string, 0, len(ev.Kinds))
	for k := range ev.Kinds {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var t kindCounts
	for _, k := range kinds {
		c := ev.Kinds[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", k, c.Pages, c.AutoRight, c.AutoWrong, c.Review, c.Unmatched, c.Failed)
		t.add(c)
	}
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Pages, t.AutoRight, t.AutoWrong, t.Review, t.Unmatched, t.Failed)
	tw.Flush()
	right, pages := ev.inEMPIAutoShare()
	if pages > 0 {
		fmt.Fprintf(w, "pages of EMPI patients auto-filed to the right patient: %d of %d (%.1f%%)\n", right, pages, 100*float64(right)/float64(pages))
	}
	nie := 0
	if c := ev.Kinds["not_in_empi"]; c != nil {
		nie = c.AutoWrong
	}
	fmt.Fprintf(w, "auto-filed to a wrong patient: %d; not-in-EMPI pages auto-filed: %d\n", t.AutoWrong-nie, nie)
	for _, p := range ev.Problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
}

func newEvaluateCmd() *cobra.Command {
	var truthPath, batch, jsonPath, name string
	var review, tune, combine bool
	cmd := &cobra.Command{
		Use:   "evaluate --truth truth.json --batch ID | evaluate --combine RESULT.json...",
		Short: "Compare a batch's filings with a synthetic batch's ground truth: pages by kind, outcome and layout family",
		Long: `Compare a batch's filings with a synthetic batch's ground truth and print the pages by
kind and outcome. --json also writes the result, --tune adds to it a replay of the
batch's filing under every auto-filing threshold of the tuning grid (nothing is saved),
and --combine prints the results of several runs by layout family with the
leave-one-family-out figure: each family filed with the threshold tuned on the others.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if combine {
				return cobra.MinimumNArgs(1)(cmd, args)
			}
			if truthPath == "" || batch == "" {
				return chartscan.Errorf(chartscan.EInvalid, "--truth and --batch are required (or --combine with result files)")
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if combine {
				bad, err := combineBench(cmd.OutOrStdout(), args)
				if err != nil {
					return err
				}
				if bad {
					fmt.Fprintln(cmd.OutOrStdout(), "PROBLEM: pages were filed to a wrong patient")
					return exitError{1}
				}
				return nil
			}
			b, err := os.ReadFile(truthPath)
			if err != nil {
				return err
			}
			var truth synth.Truth
			if err := json.Unmarshal(b, &truth); err != nil {
				return chartscan.Errorf(chartscan.EInvalid, "%s is not a ground-truth file: %v", truthPath, err)
			}
			need := needDB
			if review {
				need |= needObjects
			}
			return withApp(cmd.Context(), need, func(a *app) error {
				if review {
					if err := reviewAsTruth(cmd.Context(), a, cmd.OutOrStdout(), batch, &truth); err != nil {
						return err
					}
				}
				var rows []storage.ExportRow
				if err := a.db.Export(cmd.Context(), batch, func(r storage.ExportRow) error { rows = append(rows, r); return nil }); err != nil {
					return err
				}
				ev := evaluate(rows, &truth)
				ev.print(cmd.OutOrStdout())
				if jsonPath != "" {
					res := benchResult{Name: name, AutoWeight: a.cfg.Model.AutoWeight, Eval: ev}
					if tune {
						if res.Grid, err = replayGrid(cmd.Context(), a, batch, &truth); err != nil {
							return err
						}
					}
					if err := writeBenchResult(jsonPath, res); err != nil {
						return err
					}
				}
				if len(ev.Problems) > 0 {
					return exitError{1}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&truthPath, "truth", "", "truth.json written by chartscan synth")
	cmd.Flags().StringVar(&batch, "batch", "", "the batch that ingested the synthetic charts")
	cmd.Flags().BoolVar(&review, "review", false, "first act as a reviewer who knows the truth: decide the batch's pages in review, "+
		"re-filing after each decision as the server does, and count the decisions (this changes the batch: a benchmark's only)")
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the result to this file, for --combine")
	cmd.Flags().StringVar(&name, "name", "", "the run's name in the combined report (e.g. its seed)")
	cmd.Flags().BoolVar(&tune, "tune", false, "with --json: replay the batch's filing under every threshold of the tuning grid")
	cmd.Flags().BoolVar(&combine, "combine", false, "print the results of several runs (--json files) by layout family, with the leave-one-family-out figure")
	return cmd
}

// reviewAsTruth decides every page of the batch that waits for review as a reviewer who
// knows the truth would — the true patient, or "not in the EMPI" — in page order within
// each document, re-filing the document after each decision as the server does, so a
// decision that settles its neighbours takes them out of the queue. It prints how many
// decisions the pages in review took.
func reviewAsTruth(ctx context.Context, a *app, out io.Writer, batch string, truth *synth.Truth) error {
	w, err := worker.New(worker.Config{Store: a.db, Objects: a.objects, Model: a.cfg.Model, Pages: a.cfg.Pages,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	type key struct {
		file string
		page int
	}
	pages := map[key]synth.TruthPage{}
	for _, d := range truth.Documents {
		for _, p := range d.Pages {
			pages[key{d.File, p.Page}] = p
		}
	}
	docs, err := a.db.BatchDocuments(ctx, batch)
	if err != nil {
		return err
	}
	inReview, decisions := 0, 0
	for _, d := range docs {
		inReview += d.Review
		for {
			ps, err := a.db.MatchPages(ctx, d.ID)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(ps, func(p chartscan.Page) bool { return p.Status == chartscan.StatusReview })
			if i < 0 {
				break
			}
			detail, err := a.db.PageDetail(ctx, d.ID, ps[i].Number)
			if err != nil {
				return err
			}
			dec := storage.Decision{PageKey: storage.PageKey{DocumentID: d.ID, Page: ps[i].Number}, Version: detail.Version,
				Action: storage.ActionNotInEMPI, Actor: "evaluate"}
			if t, ok := pages[key{d.FileName, ps[i].Number}]; ok && t.InEMPI {
				dec.Action, dec.MRN = storage.ActionAssign, t.MRN
			}
			if _, err := a.db.Decide(ctx, dec); err != nil {
				return err
			}
			decisions++
			if _, err := w.Refile(ctx, d.ID, false); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "review as the truth: %d pages were in review; %d decisions filed them (each decision re-files its document)\n", inReview, decisions)
	fmt.Fprintln(out, "the table below counts the reviewer's filings with the automatic ones")
	return nil
}
