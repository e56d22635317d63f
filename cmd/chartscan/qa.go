package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newQACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "qa", Short: "Quality checks of automatic filing"}
	var asJSON bool
	report := &cobra.Command{
		Use:   "report [--json]",
		Short: "Pages drawn for a quality check, checked, found misfiled, and a 95% upper bound on the misfile rate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				r, err := a.db.QAReport(cmd.Context())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return json.NewEncoder(out).Encode(r)
				}
				fmt.Fprintf(out, "drawn %d, checked %d, filed to the wrong patient %d, waiting %d\n", r.Sampled, r.Checked, r.Wrong, r.Waiting)
				if r.Checked == 0 {
					fmt.Fprintln(out, "nothing checked yet: no bound on the misfile rate")
					return nil
				}
				fmt.Fprintf(out, "misfile rate found %.2f%%; with 95%% confidence below %.2f%% (one-sided Clopper–Pearson, %d checks since %s)\n",
					100*r.ErrorRate, 100*r.ErrorRateUpper95, r.Checked, r.Since.Format("2006-01-02"))
				return nil
			})
		},
	}
	report.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (as GET /api/v1/qa/report)")
	cmd.AddCommand(report)
	return cmd
}
