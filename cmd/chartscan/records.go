package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/storage"
)

func newRecordsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "records", Short: "Manage the EMPI (master patient index)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE…",
		Short: "Load EMPI patients from FHIR R4 Bundle JSON, FHIR NDJSON, CSV or HL7 v2 ADT (merges too); importing twice changes nothing",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				for _, path := range args {
					if err := importRecords(cmd.Context(), a, cmd.OutOrStdout(), path); err != nil {
						return err
					}
				}
				return nil
			})
		},
	})
	return cmd
}

func importRecords(ctx context.Context, a *app, w io.Writer, path string) error {
	open := func() (*os.File, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "cannot open %s: %v", path, errorsCause(err))
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return err
	}
	st, err := a.db.ImportPatients(ctx, func(yield func(chartscan.Patient) error) error {
		return indexer.ReadRecords(bufio.NewReaderSize(f, 1<<20), yield)
	})
	f.Close()
	if errors.Is(err, indexer.ErrHL7) && st.Read == 0 {
		if f, err = open(); err != nil {
			return err
		}
		defer f.Close()
		return importHL7(ctx, a, w, path, f)
	}
	if err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "%s: %v", path, err)
	}
	fmt.Fprintf(w, "%s: %d records: %d new, %d updated, %d unchanged, %d repeated in the file\n",
		path, st.Read, st.Inserted, st.Updated, st.Unchanged, st.Repeated)
	a.log.Info("empi import", "records", st.Read, "inserted", st.Inserted, "updated", st.Updated)
	return a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "empi.import", Object: "empi", Outcome: "ok",
		Detail: map[string]any{"records": st.Read, "inserted": st.Inserted, "updated": st.Updated}})
}

// importHL7 applies ADT messages in order: upserts (A01, A04, A08, A28, A31) are imported
// in runs, and each merge (A40) after the upserts before it, so a message stream that
// registers a patient and then merges a duplicate into them works in one file.
func importHL7(ctx context.Context, a *app, w io.Writer, path string, r io.Reader) error {
	var total storage.ImportStats
	var run []chartscan.Patient
	merges, moved := 0, 0
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		st, err := a.db.ImportPatients(ctx, func(yield func(chartscan.Patient) error) error {
			for _, p := range run {
				if err := yield(p); err != nil {
					return err
				}
			}
			return nil
		})
		total.Read += st.Read
		total.Inserted += st.Inserted
		total.Updated += st.Updated
		total.Unchanged += st.Unchanged
		total.Repeated += st.Repeated
		run = run[:0]
		return err
	}
	err := indexer.ReadHL7(bufio.NewReaderSize(r, 1<<20), func(ev indexer.ADTEvent) error {
		if ev.Type != indexer.ADTMergePatientID {
			run = append(run, ev.Patient)
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		n, err := a.db.MergePatients(ctx, ev.Patient.MRN, ev.MergedMRN, "cli:hl7-import")
		if err != nil {
			return err
		}
		merges++
		moved += n
		return nil
	})
	if err == nil {
		err = flush()
	}
	if chartscan.ErrorCode(err) == chartscan.EInternal && err != nil {
		return fmt.Errorf("%s: %w", path, err)
	} else if err != nil {
		return chartscan.Errorf(chartscan.EInvalid, "%s: %s", path, chartscan.ErrorMessage(err))
	}
	fmt.Fprintf(w, "%s: %d patient messages: %d new, %d updated, %d unchanged; %d merges moved %d filed pages\n",
		path, total.Read, total.Inserted, total.Updated, total.Unchanged, merges, moved)
	a.log.Info("empi import (hl7)", "records", total.Read, "merges", merges, "pages_moved", moved)
	return a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "empi.import", Object: "empi", Outcome: "ok",
		Detail: map[string]any{"records": total.Read, "inserted": total.Inserted, "updated": total.Updated, "merges": merges}})
}
