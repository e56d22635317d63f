package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
	"github.com/chartscan/chartscan/worker"
)

func newRefileCmd() *cobra.Command {
	var batch string
	var reextract bool
	cmd := &cobra.Command{
		Use:   "refile --batch ID [--extract]",
		Short: "File a finished batch's pages again with the current EMPI and matching settings, without reading them again",
		Long: `refile decides every page of a finished batch again: after an EMPI import or merge,
or a change of thresholds, pages in review or unmatched may now file, and filed pages
whose patient no longer fits go back to review. Pages a reviewer decided keep their
filing, and a page a reviewer filed carries the pages without identifiers after it. --extract first extracts the identifiers again from the stored OCR words
(after an update of the extractor). Each batch re-filed is written to the audit log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := newApp(ctx, needDB|needObjects)
			if err != nil {
				return err
			}
			defer a.close()
			// The per-document "filed" lines would bury the progress bar and the summary;
			// CHARTSCAN_LOG_LEVEL=debug shows them.
			quiet := a.cfg
			if quiet.LogLevel > slog.LevelDebug {
				quiet.LogLevel = max(quiet.LogLevel, slog.LevelWarn)
			}
			w, err := worker.New(worker.Config{Store: a.db, Objects: a.objects, Model: a.cfg.Model, Pages: a.cfg.Pages, Log: newLogger(quiet)})
			if err != nil {
				return fmt.Errorf("worker: %w", err)
			}
			docs, err := a.db.BatchDocuments(ctx, batch)
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return chartscan.Errorf(chartscan.ENotFound, "batch %s has no documents", batch)
			}
			var bar *progressbar.ProgressBar
			if isTerminal(os.Stderr) {
				bar = progressbar.NewOptions(len(docs), progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription("re-filing documents"), progressbar.OptionShowCount())
			}
			total := map[chartscan.PageStatus]int{}
			skipped := 0
			for _, d := range docs {
				if d.Status == chartscan.DocFailed {
					skipped++ // nothing was filed; a failed document is re-run, not re-filed
				} else {
					counts, err := w.Refile(ctx, d.ID, reextract)
					if err != nil {
						return fmt.Errorf("%s: %w", d.FileName, err)
					}
					for s, n := range counts {
						total[s] += n
					}
				}
				if bar != nil {
					bar.Add(1)
				}
			}
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(os.Stderr)
			}
			detail := map[string]any{"documents": len(docs) - skipped, "extract": reextract}
			for s, n := range total {
				detail[string(s)] = n
			}
			if err := a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "batch.refile",
				Object: "batch:" + batch, Outcome: "ok", Detail: detail}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "re-filed %d documents: %d auto, %d review, %d unmatched, %d confirmed by a reviewer (kept)\n",
				len(docs)-skipped, total[chartscan.StatusAuto], total[chartscan.StatusReview], total[chartscan.StatusUnmatched], total[chartscan.StatusConfirmed])
			if skipped > 0 {
				fmt.Fprintf(out, "%d failed documents skipped: re-run them instead\n", skipped)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&batch, "batch", "", "the batch to re-file")
	cmd.Flags().BoolVar(&reextract, "extract", false, "extract identifiers again from the stored OCR words first")
	cmd.MarkFlagRequired("batch")
	return cmd
}
