package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/chartscan/chartscan"
	"github.com/chartscan/chartscan/storage"
)

// scanExtensions are the files a folder walk picks up; a file named on the command line
// is always sent, whatever its name, and the worker says what is wrong with it.
var scanExtensions = []string{".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"}

func newIngestCmd() *cobra.Command {
	var wait, urgent bool
	var label, resume string
	cmd := &cobra.Command{
		Use:   "ingest [--wait] [--batch ID] PATH…",
		Short: "Upload scans (files or folders of PDF, TIFF, PNG, JPEG) as one batch; prints the batch id",
		Long: `ingest uploads files, and the scans in folders (walked recursively), as one batch and
prints the batch id first. A file in a folder is named by its path inside the folder
(box-017/chart-0042.pdf), a file given by itself by its name.

An interrupted ingest of an archive is resumed with --batch: the same paths again, and
the files the batch already holds (by name) are skipped.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withApp(cmd.Context(), needDB|needObjects|needRedis, func(a *app) error {
				return ingest(cmd.Context(), a, cmd.OutOrStdout(), os.Stderr, args, chartscan.Batch{Label: label, Urgent: urgent}, resume, wait)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every page is final; exit non-zero if any failed")
	cmd.Flags().StringVar(&label, "label", "", "a label for the batch")
	cmd.Flags().BoolVar(&urgent, "urgent", false, "a patient is waiting: the batch's pages come first in the review queue")
	cmd.Flags().StringVar(&resume, "batch", "", "add to (resume) this batch instead of starting one; files it holds are skipped")
	return cmd
}

// scanFile is a file to upload: where it is, and the name it is filed under.
type scanFile struct{ path, name string }

func collectFiles(paths []string) ([]scanFile, error) {
	var files []scanFile
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "cannot read %s: %v", p, errorsCause(err))
		}
		if !st.IsDir() {
			files = append(files, scanFile{p, filepath.Base(p)})
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && path != p {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && slices.Contains(scanExtensions, strings.ToLower(filepath.Ext(path))) {
				rel, err := filepath.Rel(p, path)
				if err != nil {
					return err
				}
				files = append(files, scanFile{path, filepath.ToSlash(rel)})
			}
			return nil
		})
		if err != nil {
			return nil, chartscan.Errorf(chartscan.EInvalid, "cannot read folder %s: %v", p, errorsCause(err))
		}
	}
	return files, nil
}

func errorsCause(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func ingest(ctx context.Context, a *app, stdout io.Writer, stderr *os.File, paths []string, newBatch chartscan.Batch, resume string, wait bool) error {
	files, err := collectFiles(paths)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return chartscan.Errorf(chartscan.EInvalid, "no scans found (looked for %s)", strings.Join(scanExtensions, ", "))
	}
	var batch chartscan.Batch
	if resume != "" {
		if _, err := a.db.Batch(ctx, resume); errors.Is(err, storage.ErrNotFound) {
			return chartscan.Errorf(chartscan.ENotFound, "no batch %s to resume", resume)
		} else if err != nil {
			return err
		}
		held, err := a.db.BatchFileNames(ctx, resume)
		if err != nil {
			return err
		}
		n := len(files)
		files = slices.DeleteFunc(files, func(f scanFile) bool { return held[f.name] })
		if skipped := n - len(files); skipped > 0 {
			fmt.Fprintf(stderr, "%d of %d files are already in batch %s: skipped\n", skipped, n, resume)
		}
		batch.ID = resume
	} else {
		newBatch.ID = uuid.NewString()
		if batch, err = a.db.CreateBatch(ctx, newBatch); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, batch.ID)

	var total int64
	for _, f := range files {
		if st, err := os.Stat(f.path); err == nil {
			total += st.Size()
		}
	}
	tty := isTerminal(stderr)
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.DefaultBytes(total, fmt.Sprintf("uploading %d files", len(files)))
	}
	var failed, repeats int
	for i, f := range files {
		created, err := ingestFile(ctx, a, batch.ID, f, bar)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stderr, "\n%s: not uploaded: %s\n", f.path, chartscan.ErrorMessage(err))
			a.log.Warn("upload failed", "batch_id", batch.ID, "file_index", i, "error", err)
		case !created:
			repeats++
		}
		if !tty {
			fmt.Fprintf(stderr, "uploaded %d/%d files\n", i+1, len(files))
		}
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(stderr)
	}
	if repeats > 0 {
		fmt.Fprintf(stderr, "%d of %d files were already stored (same content); they are not processed again\n", repeats, len(files))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%d files not uploaded: run the same ingest with --batch %s to add them\n", failed, batch.ID)
	}
	if failed > 0 && failed == len(files) {
		return exitError{1}
	}
	if !wait {
		return nil
	}
	p, err := waitBatch(ctx, a, batch.ID, stderr)
	if err != nil {
		return err
	}
	printSummary(stderr, p)
	if failed > 0 || p.DocumentsFailed > 0 || p.PagesByStatus[chartscan.StatusFailed] > 0 {
		return exitError{1}
	}
	return nil
}

// ingestFile uploads one local file into a batch. created is false when the same
// content was stored before: it is one document, processed once.
func ingestFile(ctx context.Context, a *app, batchID string, file scanFile, bar *progressbar.ProgressBar) (created bool, err error) {
	f, err := os.Open(file.path)
	if err != nil {
		return false, chartscan.Errorf(chartscan.EInvalid, "cannot open it: %v", errorsCause(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	var r io.Reader = f
	if bar != nil {
		r = io.TeeReader(f, bar)
	}
	_, created, err = a.ingester().Ingest(ctx, batchID, file.name, r, st.Size())
	return created, err
}

// waitBatch polls PostgreSQL, the source of truth, until every page of the batch is
// final, showing progress.
func waitBatch(ctx context.Context, a *app, batchID string, stderr *os.File) (storage.Progress, error) {
	tty := isTerminal(stderr)
	var bar *progressbar.ProgressBar
	lastLine := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := a.db.BatchProgress(ctx, batchID)
		if err != nil {
			return p, err
		}
		if tty {
			if bar == nil {
				bar = progressbar.NewOptions(max(p.Pages, 1), progressbar.OptionSetWriter(stderr),
					progressbar.OptionSetDescription("reading pages"), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionShowIts(), progressbar.OptionSetItsString("pages"))
			}
			bar.ChangeMax(max(p.Pages, 1))
			bar.Set(p.PagesFinal())
		} else if line := fmt.Sprintf("documents %d/%d final, pages %d/%d final", p.DocumentsFinal, p.Documents, p.PagesFinal(), p.Pages); line != lastLine {
			fmt.Fprintln(stderr, line)
			lastLine = line
		}
		if p.Done() {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(stderr)
			}
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-tick.C:
		}
	}
}
