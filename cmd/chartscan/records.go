package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
)

func newRecordsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "records", Short: "Manage the EMPI (master patient index)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE…",
		Short: "Load EMPI patients from FHIR R4 Bundle JSON, FHIR NDJSON or CSV; importing twice changes nothing",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newApp(cmd.Context(), needDB)
			if err != nil {
				return err
			}
			defer a.close()
			for _, path := range args {
				f, err := os.Open(path)
				if err != nil {
					return chartscan.Errorf(chartscan.EInvalid, "cannot open %s: %v", path, errorsCause(err))
				}
				st, err := a.db.ImportPatients(cmd.Context(), func(yield func(chartscan.Patient) error) error {
					return indexer.ReadRecords(bufio.NewReaderSize(f, 1<<20), yield)
				})
				f.Close()
				if err != nil {
					return chartscan.Errorf(chartscan.EInvalid, "%s: %v", path, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d records: %d new, %d updated, %d unchanged, %d repeated in the file\n",
					path, st.Read, st.Inserted, st.Updated, st.Unchanged, st.Repeated)
				a.log.Info("empi import", "records", st.Read, "inserted", st.Inserted, "updated", st.Updated)
			}
			return nil
		},
	})
	return cmd
}
