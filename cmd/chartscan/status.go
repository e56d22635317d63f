package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

func newStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status BATCH",
		Short: "Show a batch's pages by status, failed files with their reasons, and the page rate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newApp(cmd.Context(), needDB)
			if err != nil {
				return err
			}
			defer a.close()
			p, err := a.db.BatchProgress(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if p.Documents == 0 {
				return chartscan.Errorf(chartscan.ENotFound, "no batch %s", args[0])
			}
			printSummary(cmd.OutOrStdout(), p)
			return nil
		},
	}
}

var statusOrder = []chartscan.PageStatus{chartscan.StatusAuto, chartscan.StatusConfirmed, chartscan.StatusReview,
	chartscan.StatusUnmatched, chartscan.StatusBlank, chartscan.StatusSeparator, chartscan.StatusFailed, chartscan.StatusPending}

// printSummary writes the batch summary table: pages by status and the rate from the
// first upload to the last page filed.
func printSummary(w io.Writer, p storage.Progress) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "status\tpages\t")
	for _, s := range statusOrder {
		if n := p.PagesByStatus[s]; n > 0 || s == chartscan.StatusAuto || s == chartscan.StatusReview {
			fmt.Fprintf(tw, "%s\t%d\t\n", s, n)
		}
	}
	fmt.Fprintf(tw, "total\t%d\t\n", p.Pages)
	tw.Flush()
	fmt.Fprintf(w, "documents: %d (%d failed)\n", p.Documents, p.DocumentsFailed)
	if el := p.Last.Sub(p.First); p.Pages > 0 && el > 0 {
		fmt.Fprintf(w, "elapsed: %.1fs, %.2f pages/second\n", el.Seconds(), float64(p.Pages)/el.Seconds())
	}
	for _, f := range p.FailedReasons {
		fmt.Fprintf(w, "failed: %s: %s\n", f.FileName, f.Reason)
	}
}
