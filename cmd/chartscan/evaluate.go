package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/synth"
)

// evaluation compares what chartscan filed with a generator's ground truth.
type evaluation struct {
	Kinds map[string]*kindCounts
	// Problems lists what must never happen (a misfile, a page missing or exported
	// twice), one sentence each, with file and page but no PHI beyond the MRN.
	Problems []string
}

type kindCounts struct {
	Pages, AutoRight, AutoWrong, Review, Unmatched, Failed, Other int
}

// evaluate checks export rows against truth: every page present once; a page auto-filed
// to anyone but its patient — or at all when its patient is not in the EMPI — is a
// problem.
func evaluate(rows []storage.ExportRow, truth *synth.Truth) evaluation {
	type key struct {
		file string
		page int
	}
	ev := evaluation{Kinds: map[string]*kindCounts{}}
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
			c.Pages++
			r, ok := got[key{d.File, p.Page}]
			if !ok {
				ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d missing from the export", d.File, p.Page))
				continue
			}
			mrn := ""
			if r.MRN != nil {
				mrn = *r.MRN
			}
			switch chartscan.PageStatus(r.Status) {
			case chartscan.StatusAuto, chartscan.StatusConfirmed:
				switch {
				case !p.InEMPI:
					c.AutoWrong++
					ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d: patient not in the EMPI filed to %s", d.File, p.Page, mrn))
				case mrn != p.MRN:
					c.AutoWrong++
					ev.Problems = append(ev.Problems, fmt.Sprintf("%s page %d: filed to %s, truth %s", d.File, p.Page, mrn, p.MRN))
				default:
					c.AutoRight++
				}
			case chartscan.StatusReview:
				c.Review++
			case chartscan.StatusUnmatched:
				c.Unmatched++
			case chartscan.StatusFailed:
				c.Failed++
			default:
				c.Other++
			}
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
		t.Pages += c.Pages
		t.AutoRight += c.AutoRight
		t.AutoWrong += c.AutoWrong
		t.Review += c.Review
		t.Unmatched += c.Unmatched
		t.Failed += c.Failed
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
	var truthPath, batch string
	cmd := &cobra.Command{
		Use:   "evaluate --truth truth.json --batch ID",
		Short: "Compare a batch's filings with a synthetic batch's ground truth: pages by kind and outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(truthPath)
			if err != nil {
				return err
			}
			var truth synth.Truth
			if err := json.Unmarshal(b, &truth); err != nil {
				return chartscan.Errorf(chartscan.EInvalid, "%s is not a ground-truth file: %v", truthPath, err)
			}
			a, err := newApp(cmd.Context(), needDB)
			if err != nil {
				return err
			}
			defer a.close()
			var rows []storage.ExportRow
			if err := a.db.Export(cmd.Context(), batch, func(r storage.ExportRow) error { rows = append(rows, r); return nil }); err != nil {
				return err
			}
			ev := evaluate(rows, &truth)
			ev.print(cmd.OutOrStdout())
			if len(ev.Problems) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&truthPath, "truth", "", "truth.json written by chartscan synth")
	cmd.Flags().StringVar(&batch, "batch", "", "the batch that ingested the synthetic charts")
	cmd.MarkFlagRequired("truth")
	cmd.MarkFlagRequired("batch")
	return cmd
}
