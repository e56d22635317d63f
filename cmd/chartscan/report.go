package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

func newReportCmd() *cobra.Command {
	var batch string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report --batch ID [--json]",
		Short: "A batch's reconciliation: pages scanned, filed, in review, unmatched, failed, blank, and patient documents by state; the counts add up or it fails",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch == "" {
				return chartscan.Errorf(chartscan.EInvalid, "report needs --batch ID")
			}
			ctx := cmd.Context()
			return withApp(ctx, needDB, func(a *app) error {
				// Scans filed before patient documents existed get theirs; for every
				// other scan this changes nothing.
				if err := a.db.RefreshBatchPatientDocuments(ctx, batch); err != nil {
					return err
				}
				r, err := a.db.BatchReport(ctx, batch)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
				}
				printReport(cmd.OutOrStdout(), r)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&batch, "batch", "", "the batch to report on")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// printReport prints a report that storage.DB.BatchReport has checked adds up.
func printReport(w io.Writer, r storage.BatchReport) {
	p, d := r.Pages, r.PatientDocuments
	fmt.Fprintf(w, "batch %s\n", r.BatchID)
	fmt.Fprintf(w, "files                   %6d  (%d could not be read)\n", r.Files, r.FilesFailed)
	fmt.Fprintf(w, "pages scanned           %6d\n", p.Scanned)
	fmt.Fprintf(w, "  filed                 %6d  (%d automatically, %d by a reviewer)\n", p.Filed, p.Auto, p.Confirmed)
	fmt.Fprintf(w, "  in review             %6d\n", p.Review)
	fmt.Fprintf(w, "  unmatched             %6d\n", p.Unmatched)
	fmt.Fprintf(w, "  failed                %6d\n", p.Failed)
	fmt.Fprintf(w, "  blank                 %6d\n", p.Blank)
	fmt.Fprintf(w, "  cover/separator       %6d\n", p.Separator)
	fmt.Fprintf(w, "  being read            %6d\n", p.Pending)
	fmt.Fprintf(w, "patient documents       %6d  (%d pages)\n", d.Total, r.DistinctPagesInDocuments)
	for _, s := range []struct {
		name string
		n    int
	}{{storage.PDPending, d.Pending}, {storage.PDReady, d.Ready}, {storage.PDDelivered, d.Delivered},
		{storage.PDAcknowledged, d.Acknowledged}, {storage.PDRejected, d.Rejected}} {
		fmt.Fprintf(w, "  %-21s %6d  (%d pages)\n", s.name, s.n, r.PagesInDocuments[s.name])
	}
	fmt.Fprintf(w, "superseded versions     %6d  (%d withdrawn)\n", d.Superseded, d.Withdrawn)
	fmt.Fprintf(w, "pages add up: %d scanned = %d filed + %d review + %d unmatched + %d failed + %d blank + %d cover/separator + %d being read; %d filed = %d in patient documents\n",
		p.Scanned, p.Filed, p.Review, p.Unmatched, p.Failed, p.Blank, p.Separator, p.Pending, p.Filed, r.DistinctPagesInDocuments)
	if r.Complete {
		fmt.Fprintln(w, "complete: no page in review or being read, no document pending")
	} else {
		fmt.Fprintln(w, "not complete: pages in review or being read, or documents pending")
	}
}
