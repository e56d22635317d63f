package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

func newStatusCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "status [--wait] BATCH",
		Short: "Show a batch's pages by status, failed files with their reasons, and the page rate",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				if _, err := uuid.Parse(args[0]); err != nil {
					return chartscan.Errorf(chartscan.EInvalid, "%q is not a batch id", args[0])
				}
				p, err := a.db.BatchProgress(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if p.Documents == 0 {
					return chartscan.Errorf(chartscan.ENotFound, "no batch %s", args[0])
				}
				if wait {
					if p, err = waitBatch(cmd.Context(), a, args[0], os.Stderr); err != nil {
						return err
					}
				}
				printSummary(cmd.OutOrStdout(), p)
				if p.PagesByStatus[chartscan.StatusFailed] > 0 {
					failed, err := a.db.FailedPages(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					printFailedPages(cmd.OutOrStdout(), failed)
				}
				if wait && (p.DocumentsFailed > 0 || p.PagesByStatus[chartscan.StatusFailed] > 0) {
					return exitError{1}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every page is final; exit non-zero if any failed")
	return cmd
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

// printFailedPages lists the pages of finished documents that could not be read, so a
// batch with no failed document but failed pages says so; Re-run (the web's button,
// POST /api/v1/documents/{id}/rerun) reads them again.
func printFailedPages(w io.Writer, pages []storage.FailedPage) {
	for _, f := range pages {
		fmt.Fprintf(w, "failed: %s page %d: %s\n", f.FileName, f.Page, f.Reason)
	}
	if len(pages) > 0 {
		fmt.Fprintf(w, "%d pages failed in documents that finished; Re-run reads them again\n", len(pages))
	}
}
