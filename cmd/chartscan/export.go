package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/assemble"
	"github.com/chartscan/chartscan/deliver"
	"github.com/chartscan/chartscan/storage"
)

func newExportCmd() *cobra.Command {
	var format, batch, output, outDir string
	cmd := &cobra.Command{
		Use:   "export --format jsonl|fhir|hl7 [--batch ID] [--out DIR]",
		Short: "Write one JSON object per page (jsonl), or a batch's patient documents as FHIR NDJSON (fhir) or HL7 MDM files (hl7), each with its searchable PDF",
		Long: `jsonl writes one JSON object per page: file, document_id, page, status, mrn, score,
doc_type, date_of_service, rotation, part.

fhir and hl7 write the patient documents of a batch (--batch) into a directory (--out),
each version the documents are at now, pending ones (a page of their part still in
review) left out: fhir as FHIR R4 NDJSON, Binary.ndjson (each document's searchable
PDF/A) and DocumentReference.ndjson; hl7 as one HL7 v2.5.1 MDM file per document,
<number>.hl7 (T02 original, T10 replacement, the PDF in OBX-5), and a T11 cancel,
<number>-cancel.hl7, of each delivered version that was entered in error or withdrawn.
Document numbers are the document's id and version, the same in every export.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "jsonl":
				return exportJSONL(cmd, batch, output)
			case "fhir", "hl7":
				if batch == "" || outDir == "" {
					return chartscan.Errorf(chartscan.EInvalid, "export --format %s needs --batch ID and --out DIR", format)
				}
				return exportDocuments(cmd, format, batch, outDir)
			}
			return chartscan.Errorf(chartscan.EInvalid, "unknown export format %q (jsonl, fhir and hl7 are supported)", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "jsonl", "output format: jsonl, fhir or hl7")
	cmd.Flags().StringVar(&batch, "batch", "", "only the documents this batch uploaded (required for fhir and hl7)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "jsonl: write to this file instead of standard output")
	cmd.Flags().StringVar(&outDir, "out", "", "fhir, hl7: the directory to write the files into (made if missing)")
	return cmd
}

func exportJSONL(cmd *cobra.Command, batch, output string) error {
	return withApp(cmd.Context(), needDB, func(a *app) error {
		// Like the web's export: recorded before anything is written, or not done.
		if err := a.db.Audit(cmd.Context(), auditCLI("export", "batch:"+batch, map[string]any{"format": "jsonl"})); err != nil {
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
}

// exportDocuments writes a batch's patient documents as FHIR NDJSON or HL7 MDM files.
// Every file is written beside its name first and renamed into place once all are
// built, so a failed export leaves no half-written file.
func exportDocuments(cmd *cobra.Command, format, batch, dir string) error {
	ctx := cmd.Context()
	return withApp(ctx, needDB|needObjects, func(a *app) error {
		if _, ok := assemble.FHIRSystem(cmp.Or(a.cfg.MRNSystemURI, a.cfg.MRNSystem)); format == "fhir" && !ok {
			return chartscan.Errorf(chartscan.EInvalid, "FHIR names the MRN's system by a URI: set CHARTSCAN_MRN_SYSTEM_URI (urn:oid:… or https://…)")
		}
		if format == "hl7" && a.cfg.Facility == "" {
			return chartscan.Errorf(chartscan.EInvalid, "HL7 names the sending facility in MSH-4: set CHARTSCAN_FACILITY")
		}
		// Scans filed before patient documents existed get theirs; for every other scan
		// this changes nothing.
		if err := a.db.RefreshBatchPatientDocuments(ctx, batch); err != nil {
			return err
		}
		docs, err := a.db.PatientDocuments(ctx, batch)
		if err != nil {
			return err
		}
		var send, cancel []storage.PatientDocument
		pending := 0
		for _, d := range docs {
			switch d.State {
			case storage.PDPending:
				pending++
			case storage.PDSuperseded:
			default:
				send = append(send, d)
			}
		}
		if format == "hl7" {
			// The delivered versions to cancel: those withdrawn, and those entered in
			// error that a version written now replaces (sent as an original: a T10
			// cannot move a document to another patient).
			for _, d := range docs {
				if d.State == storage.PDSuperseded && (d.Withdraw || d.EnteredInError && slices.ContainsFunc(send, func(o storage.PatientDocument) bool {
					return o.ID == d.ID && o.ReplacesVersion == d.Version
				})) {
					cancel = append(cancel, d)
				}
			}
		}
		// Like every export: recorded before anything is written, or not done.
		if err := a.db.Audit(ctx, auditCLI("export", "batch:"+batch, map[string]any{"format": format,
			"documents": len(send), "cancels": len(cancel), "pending_left_out": pending})); err != nil {
			return err
		}
		// HL7 names the MRN's assigning authority as CHARTSCAN_MRN_SYSTEM does, else by
		// the URI FHIR uses.
		b := &assemble.Builder{Store: a.db, Objects: a.objects, MRNSystemURI: a.cfg.MRNSystemURI,
			Facility: deliver.Facility{Name: a.cfg.Facility, MRNSystem: cmp.Or(a.cfg.MRNSystem, a.cfg.MRNSystemURI)}}
		files, err := buildExport(ctx, b, format, send, cancel)
		if err != nil {
			return err
		}
		if err := writeFiles(dir, files); err != nil {
			return err
		}
		a.log.Info("export written", "batch_id", batch, "format", format, "documents", len(send), "cancels", len(cancel), "pending", pending)
		fmt.Fprintf(cmd.OutOrStdout(), "%d patient documents written to %s (%d cancels); %d pending left out\n", len(send), dir, len(cancel), pending)
		return nil
	})
}

// exportFile is one file of an export: its name in the directory and its bytes.
type exportFile struct {
	name string
	data []byte
}

// buildExport builds every file of an export in memory, one document at a time.
func buildExport(ctx context.Context, b *assemble.Builder, format string, send, cancel []storage.PatientDocument) ([]exportFile, error) {
	var files []exportFile
	var binaries, refs bytes.Buffer
	for _, pd := range cancel {
		msg, err := b.Cancel(ctx, pd)
		if err != nil {
			return nil, err
		}
		files = append(files, exportFile{assemble.Number(pd.ID, pd.Version) + "-cancel.hl7", msg})
	}
	for _, pd := range send {
		d, err := b.Document(ctx, pd)
		if err != nil {
			return nil, err
		}
		if format == "hl7" {
			msg, err := assemble.MDM(d)
			if err != nil {
				return nil, err
			}
			files = append(files, exportFile{d.Number() + ".hl7", msg})
			continue
		}
		if d, err = b.FHIR(d); err != nil {
			return nil, err
		}
		lines, err := deliver.FHIRNDJSON(d, true)
		if err != nil {
			return nil, err
		}
		for _, line := range bytes.Split(bytes.TrimRight(lines, "\n"), []byte("\n")) {
			var r struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, err
			}
			w := &refs
			if r.ResourceType == "Binary" {
				w = &binaries
			}
			w.Write(line)
			w.WriteByte('\n')
		}
	}
	if format == "fhir" {
		files = append(files, exportFile{"Binary.ndjson", binaries.Bytes()}, exportFile{"DocumentReference.ndjson", refs.Bytes()})
	}
	return files, nil
}

// writeFiles writes files into dir (made if missing), each under a temporary name
// first and all renamed into place once all are written.
func writeFiles(dir string, files []exportFile) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var tmps []string
	defer func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}()
	for _, f := range files {
		tmp := filepath.Join(dir, "."+f.name+".partial")
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return err
		}
		tmps = append(tmps, tmp)
	}
	for i, f := range files {
		if err := os.Rename(tmps[i], filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	tmps = nil
	return nil
}
