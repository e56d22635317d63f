package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/ocr"
	"github.com/chartscan/chartscan/storage"
)

// coversheetInfo is what a cover sheet for p prints: its barcode carries the facility's
// cover prefix, the one the pipeline reads (CHARTSCAN_COVER_PREFIX).
func coversheetInfo(cfg config, p chartscan.Patient, docType, dos string) ocr.CoversheetInfo {
	return ocr.CoversheetInfo{MRN: p.MRN, Family: p.Family, Given: p.Given, BirthDate: p.BirthDate, DocType: docType, DOS: dos,
		Prefix: cfg.Pages.CoverPrefix}
}

func newCoversheetCmd() *cobra.Command {
	var mrn, docType, dos, out string
	cmd := &cobra.Command{
		Use:   "coversheet --mrn MRN [--doc-type T] [--dos YYYY-MM-DD] [-o FILE]",
		Short: "Print a patient cover sheet (one-page PDF with a barcode) to put on top of a chart before scanning",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				p, err := a.db.Patient(cmd.Context(), mrn)
				if errors.Is(err, storage.ErrNotFound) {
					return chartscan.Errorf(chartscan.ENotFound, "no patient with MRN %s in the EMPI", mrn)
				}
				if err != nil {
					return err
				}
				if out == "" {
					out = "coversheet-" + p.MRN + ".pdf"
				}
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				if err := ocr.Coversheet(f, coversheetInfo(a.cfg, p, docType, dos)); err != nil {
					f.Close()
					os.Remove(out)
					return chartscan.Errorf(chartscan.EInvalid, "the cover sheet could not be made: %s", chartscan.ErrorMessage(err))
				}
				if err := f.Close(); err != nil {
					return err
				}
				// The sheet shows a patient's name and birth date: record who printed it.
				if err := a.db.Audit(cmd.Context(), storage.AuditEntry{Actor: "cli", Action: "coversheet.print",
					Object: "patient:" + p.MRN, Outcome: "ok", Detail: map[string]any{"doc_type": docType}}); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&mrn, "mrn", "", "the patient's MRN (must be in the EMPI)")
	cmd.Flags().StringVar(&docType, "doc-type", "", "file the pages under this document type")
	cmd.Flags().StringVar(&dos, "dos", "", "date of service, YYYY-MM-DD")
	cmd.Flags().StringVarP(&out, "output", "o", "", "PDF to write (default coversheet-<mrn>.pdf)")
	cmd.MarkFlagRequired("mrn")
	return cmd
}
