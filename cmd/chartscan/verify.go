package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan/storage"
)

func newVerifyCmd() *cobra.Command {
	var clean bool
	var age time.Duration
	cmd := &cobra.Command{
		Use:   "verify [--clean]",
		Short: "Scrub: read every stored original back from MinIO and check it against its SHA-256; exit 1 if one is missing or changed",
		Long: `verify reads every uploaded original back from the object store and checks it against
the SHA-256 it is stored under (and recorded with in PostgreSQL). It lists each original
that is missing or whose content changed, with its file name and document, and exits 1
if there is one. It also lists what interrupted uploads left behind (objects under
incoming/ and multipart uploads never completed, older than --age); they are no
documents, and --clean removes them. Each run is written to the audit log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withApp(cmd.Context(), needDB|needObjects, func(a *app) error {
				ctx := cmd.Context()
				out := cmd.OutOrStdout()
				var checked, missing, changed int
				var bytes int64
				err := a.db.Originals(ctx, func(o storage.Original) error {
					key := storage.OriginalKey(o.SHA256)
					sha, n, err := a.objects.Hash(ctx, key)
					switch {
					case errors.Is(err, storage.ErrNoObject):
						missing++
						fmt.Fprintf(out, "missing: %s (document %s): no object %s\n", o.FileName, o.DocumentID, key)
					case err != nil:
						return err
					case sha != o.SHA256:
						changed++
						fmt.Fprintf(out, "changed: %s (document %s): %s holds %d bytes with SHA-256 %s\n", o.FileName, o.DocumentID, key, n, sha)
					}
					checked++
					bytes += n
					return nil
				})
				if err != nil {
					return err
				}
				left, err := a.objects.Leftovers(ctx, age)
				if err != nil {
					return err
				}
				removed := 0
				for _, l := range left {
					if clean {
						if err := a.objects.RemoveLeftover(ctx, l); err != nil {
							return err
						}
						removed++
					} else {
						fmt.Fprintf(out, "left over from an interrupted upload: %s\n", l)
					}
				}
				outcome := "ok"
				if missing+changed > 0 {
					outcome = "failed"
				}
				if err := a.db.Audit(ctx, storage.AuditEntry{Actor: "cli", Action: "originals.verify", Object: "bucket:" + a.cfg.MinIOBucket,
					Outcome: outcome, Detail: map[string]any{"originals": checked, "missing": missing, "changed": changed,
						"leftovers": len(left), "removed": removed}}); err != nil {
					return err
				}
				fmt.Fprintf(out, "verified %d originals (%d bytes): %d missing, %d changed\n", checked, bytes, missing, changed)
				switch {
				case removed > 0:
					fmt.Fprintf(out, "removed %d leftovers of interrupted uploads\n", removed)
				case len(left) > 0:
					fmt.Fprintf(out, "%d leftovers of interrupted uploads: verify --clean removes them\n", len(left))
				}
				if missing+changed > 0 {
					return exitError{1}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&clean, "clean", false, "remove what interrupted uploads left behind")
	cmd.Flags().DurationVar(&age, "age", time.Hour, "only count leftovers older than this (an upload may be under way)")
	return cmd
}
