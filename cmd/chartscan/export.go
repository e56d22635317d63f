package main

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

func newExportCmd() *cobra.Command {
	var format, batch, output string
	cmd := &cobra.Command{
		Use:   "export --format jsonl [--batch ID]",
		Short: "Write one JSON object per page: file, document_id, page, status, mrn, score, doc_type, date_of_service, rotation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" {
				return chartscan.Errorf(chartscan.EInvalid, "unknown export format %q (jsonl is supported)", format)
			}
			return withApp(cmd.Context(), needDB, func(a *app) error {
				// Like the web's export: recorded before anything is written, or not done.
				if err := a.db.Audit(cmd.Context(), auditCLI("export", "batch:"+batch, map[string]any{"format": format})); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if output != "" && output != "-" {
					f, err := os.Create(output)
					if err != nil {
						return err
					}
					defer f.Close()
					out = f
				}
				bw := bufio.NewWriter(out)
				enc := json.NewEncoder(bw)
				n := 0
				if err := a.db.Export(cmd.Context(), batch, func(r storage.ExportRow) error { n++; return enc.Encode(r) }); err != nil {
					return err
				}
				a.log.Info("export written", "batch_id", batch, "pages", n)
				return bw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "jsonl", "output format: jsonl")
	cmd.Flags().StringVar(&batch, "batch", "", "only the documents this batch uploaded")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
