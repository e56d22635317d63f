package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/indexer"
	"github.com/chartscan/chartscan/storage"
)

func newRecordsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "records", Short: "Manage the EMPI (master patient index)"}
	var strict bool
	var encoding, columns string
	imp := &cobra.Command{
		Use:   "import [--strict] [--encoding ENC] [--map MAPPING] FILE…",
		Short: "Load EMPI patients from FHIR R4 (Patient, Bundles, NDJSON), CSV or HL7 v2 ADT (merges too); importing twice changes nothing",
		Long: `Load EMPI patients from FHIR R4 JSON (a Patient, a Bundle of any type, Bundles in a
Bundle, NDJSON), CSV or HL7 v2 ADT (merges too); importing twice changes nothing.

A record needs only its MRN: a missing name or birth date stays missing, and a birth date
known only to the year or month (1975, 1974-12) is kept so. A record that cannot be
imported (no MRN, an impossible birth date, a line that is no record) is skipped and
listed by its line, or its entry in a Bundle, with the reason; the command fails only
when a file holds nothing to import. With --strict a file holding any such record is
refused, and nothing changes: every file is checked before any is imported.

A FHIR Patient.link of type replaced-by merges the patient into the one it names. A CSV
in another tool's layout is read with --map: synthea (its patients.csv), febrl, or
column=HEADER pairs (mrn=Id,family=LAST,given=FIRST,birth_date=BIRTHDATE), or a file
of such lines. Text that is not UTF-8 is read as Windows-1252 (Latin-1 too); --encoding
names another (ISO-8859-15, …). A record of an MRN merged into another patient is not
imported: the merged MRN stays an alias of the survivor. CHARTSCAN_MRN_SYSTEM picks the
MRN among a record's identifiers by its system (FHIR) or assigning authority (HL7).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), needDB, func(a *app) error {
				opts := indexer.RecordOptions{Encoding: encoding, MRNSystem: a.cfg.MRNSystem}
				if columns != "" {
					m := columns
					if b, err := os.ReadFile(columns); err == nil {
						m = string(b) // a mapping file
					}
					var err error
					if opts.Columns, err = indexer.ParseColumnMap(m); err != nil {
						return err
					}
				}
				if strict {
					if err := checkRecordFiles(cmd.OutOrStdout(), args, opts); err != nil {
						return err
					}
				}
				for _, path := range args {
					if err := importRecords(cmd.Context(), a, cmd.OutOrStdout(), path, opts); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	imp.Flags().BoolVar(&strict, "strict", false, "refuse a file holding any record that cannot be imported; nothing changes")
	imp.Flags().StringVar(&encoding, "encoding", "", "the files' text encoding, e.g. latin1, windows-1252, ISO-8859-15 (default: UTF-8, else Windows-1252)")
	imp.Flags().StringVar(&columns, "map", "", "CSV columns: synthea, febrl, column=HEADER pairs, or a file of them")
	cmd.AddCommand(imp)
	return cmd
}

// maxListedSkips is how many skipped records an import report lists; all are counted.
const maxListedSkips = 1000

// openRecords opens an EMPI file, with a user-safe error.
func openRecords(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, chartscan.Errorf(chartscan.EInvalid, "cannot open %s: %v", path, errorsCause(err))
	}
	return f, nil
}

// importEMPI imports the patients of an EMPI file in any format ReadRecords reads,
// skipping, counting and listing (up to maxListedSkips) the records it cannot import.
// It fails when the file holds no patient it can import. The CLI and the web's import
// both use it, so both report the same.
func importEMPI(ctx context.Context, db *storage.DB, r io.Reader) (storage.ImportStats, error) {
	st, _, err := importEMPIWith(ctx, db, r, indexer.RecordOptions{})
	return st, err
}

// importEMPIWith is importEMPI for a file opts describe. After the patients, it applies
// the file's FHIR replaced-by links as merges and returns how many it applied.
func importEMPIWith(ctx context.Context, db *storage.DB, r io.Reader, opts indexer.RecordOptions) (storage.ImportStats, int, error) {
	var skipped []storage.SkippedRecord
	type link struct{ merged, survivor string }
	var links []link
	opts.Replaced = func(merged, survivor string) error {
		links = append(links, link{merged, survivor})
		return nil
	}
	n := 0
	st, err := db.ImportRecords(ctx, func(yield func(storage.Record) error) error {
		return indexer.ReadEMPIRecords(bufio.NewReaderSize(r, 1<<20), opts, func(rec indexer.Record) error {
			return yield(storage.Record{Patient: rec.Patient, MRNSystem: rec.MRNSystem, IDs: patientIDs(rec.IDs)})
		}, func(b indexer.BadRecord) error {
			n++
			if len(skipped) < maxListedSkips {
				skipped = append(skipped, storage.SkippedRecord(b))
			}
			return nil
		})
	})
	st.Skipped, st.SkippedRecords = n, skipped
	if err == nil && st.Read == 0 {
		err = nothingImported(st)
	}
	merges := 0
	for _, l := range links {
		if err != nil {
			break
		}
		res, merr := db.ApplyEMPIChanges(ctx, nil, []storage.EMPIChange{{Kind: storage.ChangeMerge,
			Patient: chartscan.Patient{MRN: l.survivor}, MergedMRN: l.merged}}, "cli:empi-import")
		var ce *storage.ChangeError
		switch {
		case errors.As(merr, &ce):
			st.Skipped++
			if len(st.SkippedRecords) < maxListedSkips {
				st.SkippedRecords = append(st.SkippedRecords, storage.SkippedRecord{Where: "Patient.link", Reason: ce.Error()})
			}
		case merr != nil:
			err = merr
		default:
			merges += res.Merges
		}
	}
	return st, merges, err
}

// nothingImported is the error of a file without a record to import; it names the first
// skipped records, for a caller that shows only the error.
func nothingImported(st storage.ImportStats) error {
	if st.Skipped == 0 {
		return chartscan.Errorf(chartscan.EInvalid, "the file holds no patient records")
	}
	var first []string
	for _, s := range st.SkippedRecords[:min(len(st.SkippedRecords), 5)] {
		first = append(first, s.String())
	}
	more := ""
	if st.Skipped > len(first) {
		more = "; …"
	}
	return chartscan.Errorf(chartscan.EInvalid, "no patient record could be imported: %d skipped (%s%s)",
		st.Skipped, strings.Join(first, "; "), more)
}

// checkRecordFiles reads every file without importing anything and fails, listing them,
// if any holds a record that cannot be imported: --strict imports all or nothing.
func checkRecordFiles(w io.Writer, paths []string, opts indexer.RecordOptions) error {
	bad, files := 0, 0
	for _, path := range paths {
		n, err := checkRecordFile(w, path, opts)
		if err != nil {
			return err
		}
		bad += n
		if n > 0 {
			files++
		}
	}
	if bad > 0 {
		return chartscan.Errorf(chartscan.EInvalid, "refused (--strict): %d records in %d files cannot be imported; nothing was changed", bad, files)
	}
	return nil
}

// checkRecordFile lists the records of one file that cannot be imported and counts them.
func checkRecordFile(w io.Writer, path string, opts indexer.RecordOptions) (int, error) {
	f, err := openRecords(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, read := 0, 0
	err = indexer.ReadRecordsWith(bufio.NewReaderSize(f, 1<<20), opts, func(chartscan.Patient) error {
		read++
		return nil
	}, func(b indexer.BadRecord) error {
		n++
		if n <= maxListedSkips {
			fmt.Fprintf(w, "%s: %s\n", path, b)
		}
		return nil
	})
	if errors.Is(err, indexer.ErrHL7) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		read, n = 0, 0
		err = indexer.ReadHL7(bufio.NewReaderSize(f, 1<<20), indexer.HL7Options{MRNSystem: opts.MRNSystem}, func(*indexer.HL7Message) error {
			read++
			return nil
		}, func(b indexer.BadRecord) error {
			n++
			if n <= maxListedSkips {
				fmt.Fprintf(w, "%s: %s\n", path, b)
			}
			return nil
		})
	}
	if err != nil {
		return 0, fileError(path, err)
	}
	if read == 0 && n == 0 {
		return 0, chartscan.Errorf(chartscan.EInvalid, "%s: the file holds no patient records", path)
	}
	if n > maxListedSkips {
		fmt.Fprintf(w, "%s: … and %d more\n", path, n-maxListedSkips)
	}
	return n, nil
}

// fileError names the file in an import error, keeping internal errors internal.
func fileError(path string, err error) error {
	if chartscan.ErrorCode(err) == chartscan.EInternal {
		// A database error's text can quote a record: the user sees its SQLSTATE only.
		return &chartscan.Error{Code: chartscan.EInternal,
			Message: fmt.Sprintf("%s: the import stopped on an internal error (%s); what was imported before it stays", path, safeError(err))}
	}
	return chartscan.Errorf(chartscan.EInvalid, "%s: %s", path, chartscan.ErrorMessage(err))
}

func importRecords(ctx context.Context, a *app, w io.Writer, path string, opts indexer.RecordOptions) error {
	f, err := openRecords(path)
	if err != nil {
		return err
	}
	st, merges, err := importEMPIWith(ctx, a.db, f, opts)
	f.Close()
	if errors.Is(err, indexer.ErrHL7) && st.Read == 0 {
		if f, err = openRecords(path); err != nil {
			return err
		}
		defer f.Close()
		return importHL7(ctx, a, w, path, f)
	}
	if st.Read > 0 || st.Skipped > 0 {
		fmt.Fprintf(w, "%s: %d records: %d new, %d updated, %d unchanged, %d repeated in the file; %d skipped\n",
			path, st.Read, st.Inserted, st.Updated, st.Unchanged, st.Repeated, st.Skipped)
		if st.Merged > 0 {
			fmt.Fprintf(w, "  %d records of MRNs merged into another patient were not applied (the survivor keeps its record)\n", st.Merged)
		}
		if merges > 0 {
			fmt.Fprintf(w, "  %d patients merged into the patient their replaced-by link names\n", merges)
		}
		if st.SystemConflicts > 0 {
			fmt.Fprintf(w, "  %d records not imported: their MRN belongs to a patient of another system or assigning authority\n", st.SystemConflicts)
		}
		if st.IDConflicts > 0 {
			fmt.Fprintf(w, "  %d identifiers of other systems not linked: another patient holds them\n", st.IDConflicts)
		}
		for _, s := range st.SkippedRecords {
			fmt.Fprintf(w, "  %s\n", s)
		}
		if more := st.Skipped - len(st.SkippedRecords); more > 0 {
			fmt.Fprintf(w, "  … and %d more\n", more)
		}
	}
	if err != nil {
		return fileError(path, err)
	}
	a.log.Info("empi import", "records", st.Read, "inserted", st.Inserted, "updated", st.Updated, "skipped", st.Skipped, "merges", merges)
	return a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "empi.import", Object: "empi", Outcome: "ok",
		Detail: map[string]any{"records": st.Read, "inserted": st.Inserted, "updated": st.Updated, "skipped": st.Skipped,
			"merged_mrns_not_applied": st.Merged, "merges": merges, "system_conflicts": st.SystemConflicts, "id_conflicts": st.IDConflicts}})
}

// importHL7 applies the ADT messages of a file in order, each in its own transaction as
// the live listener (chartscan adt) applies them: a message that cannot be read or
// applied is skipped and listed by its number with the reason, and a message applied
// before (the same sender, control id and content) is not applied again, so importing a
// file twice, or a file the listener already took, changes nothing.
func importHL7(ctx context.Context, a *app, w io.Writer, path string, r io.Reader) error {
	ap := hl7Applier{db: a.db, actor: "cli:hl7-import"}
	var total storage.ChangeResult
	var skipped []storage.SkippedRecord
	messages, patientMsgs, duplicates, nskipped := 0, 0, 0, 0
	skip := func(where, reason string) {
		nskipped++
		if len(skipped) < maxListedSkips {
			skipped = append(skipped, storage.SkippedRecord{Where: where, Reason: reason})
		}
	}
	err := indexer.ReadHL7(bufio.NewReaderSize(r, 1<<20), indexer.HL7Options{MRNSystem: a.cfg.MRNSystem}, func(m *indexer.HL7Message) error {
		messages++
		if len(m.Events) == 0 {
			return nil // not ADT, or an event that changes no patient
		}
		res, err := ap.apply(ctx, m)
		if he, ok := hl7Refusal(err); ok {
			skip(fmt.Sprintf("message %d", messages), he.Error())
			return nil
		}
		if err != nil {
			return err
		}
		patientMsgs++
		if res.Duplicate {
			duplicates++
			return nil
		}
		total.Inserted += res.Inserted
		total.Updated += res.Updated
		total.Unchanged += res.Unchanged
		total.Merges += res.Merges
		total.PagesMoved += res.PagesMoved
		total.IDConflicts += res.IDConflicts
		return nil
	}, func(b indexer.BadRecord) error {
		messages++
		skip(b.Where, b.Reason)
		return nil
	})
	if err != nil {
		return fileError(path, err)
	}
	fmt.Fprintf(w, "%s: %d patient messages: %d new, %d updated, %d unchanged; %d merges moved %d filed pages; %d applied before; %d skipped\n",
		path, patientMsgs, total.Inserted, total.Updated, total.Unchanged, total.Merges, total.PagesMoved, duplicates, nskipped)
	for _, s := range skipped {
		fmt.Fprintf(w, "  %s\n", s)
	}
	if total.IDConflicts > 0 {
		fmt.Fprintf(w, "  %d identifiers of other systems not linked: another patient holds them\n", total.IDConflicts)
	}
	if more := nskipped - len(skipped); more > 0 {
		fmt.Fprintf(w, "  … and %d more\n", more)
	}
	if patientMsgs == 0 {
		return fileError(path, nothingImported(storage.ImportStats{Skipped: nskipped, SkippedRecords: skipped}))
	}
	a.log.Info("empi import (hl7)", "messages", messages, "inserted", total.Inserted, "updated", total.Updated,
		"merges", total.Merges, "pages_moved", total.PagesMoved, "duplicates", duplicates, "skipped", nskipped)
	return a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "empi.import", Object: "empi", Outcome: "ok",
		Detail: map[string]any{"records": patientMsgs, "inserted": total.Inserted, "updated": total.Updated, "merges": total.Merges,
			"duplicates": duplicates, "skipped": nskipped}})
}
