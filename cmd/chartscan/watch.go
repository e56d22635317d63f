package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chartscan/chartscan"
)

func newWatchCmd() *cobra.Command {
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "watch DIR",
		Short: "Take the scans put into a folder once they are complete: ingest, move to DIR/.done (runs until stopped)",
		Long: `watch takes every scan (.pdf .tif .tiff .png .jpg .jpeg) put into DIR or a subfolder
once its size and modification time have not changed for CHARTSCAN_WATCH_SETTLE, into the
batch its subfolder names (DIR/<station>/<box>/scan.pdf: "<station>/<box>"), then moves it
to DIR/.done/<station>/<box>/scan.pdf (or leaves it with a hidden marker beside it,
CHARTSCAN_WATCH_TAKEN=marker). A file that cannot be read, or stays empty, goes to
DIR/.failed/ with NAME.reason.txt saying why. Hidden files and folders are left alone, so
a scanner may write .scan.pdf and rename it when done. SIGTERM finishes the file in hand.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return chartscan.Errorf(chartscan.EInvalid, "%s is not a folder", args[0])
			}
			return withApp(cmd.Context(), needDB|needObjects|needRedis, func(a *app) error {
				w := &watcher{a: a, in: a.ingester(), leases: newLeases(a.redis), s: a.cfg.Intake, dir: dir,
					poll: poll, seen: map[string]*fileSeen{}}
				if w.poll <= 0 {
					w.poll = min(time.Second, max(w.s.Settle/4, 50*time.Millisecond))
				}
				return w.run(cmd.Context())
			})
		},
	}
	cmd.Flags().DurationVar(&poll, "poll", 0, "how often to look at the folder (default: a second, or a quarter of CHARTSCAN_WATCH_SETTLE if shorter)")
	return cmd
}

const (
	doneDir   = ".done"
	failedDir = ".failed"
	// markerSuffix ends the hidden marker a file taken in place is left with: .NAME.chartscan-taken.
	markerSuffix = ".chartscan-taken"
)

type watcher struct {
	a      *app
	in     *ingester
	leases *leases
	s      intakeSettings
	dir    string
	poll   time.Duration
	seen   map[string]*fileSeen // by path below dir
}

// fileSeen is a file as last looked at: since when it has been as it is.
type fileSeen struct {
	size    int64
	mtime   time.Time
	since   time.Time
	retryAt time.Time // after a store failed
}

// emptyWait is how long, in settle periods, an empty file is waited on before it fails:
// a scanner may create the file well before it writes to it.
const emptyWait = 4

func (w *watcher) run(ctx context.Context) error {
	w.a.log.Info("watch: watching a folder for scans", "taken", w.s.FolderTaken, "settle", w.s.Settle.String())
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(inFlightGrace, stopWork) })
	defer stop()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		w.scan(ctx, work)
		select {
		case <-ctx.Done():
			w.a.log.Info("watch: stopped")
			return nil
		case <-t.C:
		}
	}
}

// scan looks at every file once and takes those that have been still long enough.
func (w *watcher) scan(ctx, work context.Context) {
	now := time.Now()
	present := map[string]bool{}
	err := filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == w.dir {
				return err
			}
			return nil // a file or folder gone meanwhile, or unreadable: looked at again next time
		}
		if p == w.dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir // .done, .failed, a scanner's temporary folder
			}
			return nil
		}
		if !d.Type().IsRegular() || !slices.Contains(scanExtensions, strings.ToLower(filepath.Ext(p))) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(w.dir, p)
		if err != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if w.s.FolderTaken == "marker" && w.marked(rel, info) {
			return nil
		}
		present[rel] = true
		s := w.seen[rel]
		if s == nil || s.size != info.Size() || !s.mtime.Equal(info.ModTime()) {
			w.seen[rel] = &fileSeen{size: info.Size(), mtime: info.ModTime(), since: now}
			return nil
		}
		still := now.Sub(s.since)
		if still < w.s.Settle || now.Before(s.retryAt) || (s.size == 0 && still < emptyWait*w.s.Settle) {
			return nil
		}
		w.take(work, rel, s)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		w.a.log.Warn("watch: cannot read the folder", "error", errorsCause(err))
	}
	for rel := range w.seen {
		if !present[rel] {
			delete(w.seen, rel)
		}
	}
}

// take ingests one file that has been still for the settle time, then moves it to .done
// (or marks it). A file that cannot be read or is empty goes to .failed with the reason;
// a store that fails leaves the file where it is, to be taken again later.
func (w *watcher) take(ctx context.Context, rel string, s *fileSeen) {
	log := w.a.log.With("file", fileID(rel))
	retry := func(msg string, err error) {
		s.retryAt = time.Now().Add(30 * time.Second)
		log.Warn("watch: "+msg+"; trying again in 30 s", "error", err)
	}
	release, ok, err := w.leases.take(ctx, "watch:"+w.dir+"/"+rel)
	if err != nil {
		retry("cannot lease the file", err)
		return
	}
	if !ok {
		return // another watch has it in hand
	}
	defer release()
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return // taken by another watch, or removed
	} else if err != nil {
		w.fail(rel, "the file could not be opened: "+errorsCause(err).Error())
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != s.size || !st.ModTime().Equal(s.mtime) {
		delete(w.seen, rel) // changed after all: looked at afresh
		return
	}
	if w.s.FolderTaken == "marker" && w.marked(rel, st) {
		return // another watch marked it meanwhile
	}
	if st.Size() == 0 {
		w.fail(rel, "the file is empty (0 bytes): nothing was scanned into it")
		return
	}
	label, name := intakeLabel(rel)
	batch, err := w.a.db.OpenIntakeBatch(ctx, chartscan.BatchFolder, label, w.s.BatchIdle)
	if err != nil {
		retry("no batch for the file", err)
		return
	}
	src := &fileReader{r: io.LimitReader(f, st.Size())}
	doc, created, err := w.in.Ingest(ctx, batch.ID, name, src, st.Size())
	switch {
	case err != nil && src.err != nil:
		w.fail(rel, "the file could not be read: "+errorsCause(src.err).Error())
		return
	case err != nil:
		retry("file not ingested", err)
		return
	}
	if now, err := os.Stat(p); err != nil || now.Size() != st.Size() || !now.ModTime().Equal(st.ModTime()) {
		// Written to while it was read: what was read is stored; the file as it is now is
		// taken once it is still again.
		delete(w.seen, rel)
		log.Info("watch: file changed while it was taken; taken again once it is still", "batch_id", batch.ID, "document_id", doc.ID)
		return
	}
	if err := w.markTaken(rel, st, doc, batch); err != nil {
		retry("file ingested but not marked taken", err)
		return
	}
	delete(w.seen, rel)
	log.Info("watch: file taken", "batch_id", batch.ID, "document_id", doc.ID, "new", created, "bytes", st.Size())
}

// fileReader remembers a read error of the file itself, which no retry mends.
type fileReader struct {
	r   io.Reader
	err error
}

func (f *fileReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF {
		f.err = err
	}
	return n, err
}

// takenMarker is what the marker of a file taken in place holds: enough to tell the file
// taken from another one put later under its name. No file name, nothing of the content.
type takenMarker struct {
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mtime"`
	SHA256     string    `json:"sha256"`
	DocumentID string    `json:"document_id"`
	BatchID    string    `json:"batch_id"`
	TakenAt    time.Time `json:"taken_at"`
}

func (w *watcher) markerPath(rel string) string {
	dir, name := filepath.Split(filepath.Join(w.dir, filepath.FromSlash(rel)))
	return filepath.Join(dir, "."+name+markerSuffix)
}

// marked reports whether the file as it is now was taken in place.
func (w *watcher) marked(rel string, info fs.FileInfo) bool {
	b, err := os.ReadFile(w.markerPath(rel))
	if err != nil {
		return false
	}
	var m takenMarker
	return json.Unmarshal(b, &m) == nil && m.Size == info.Size() && m.ModTime.Equal(info.ModTime())
}

func (w *watcher) markTaken(rel string, st fs.FileInfo, doc chartscan.Document, batch chartscan.Batch) error {
	if w.s.FolderTaken == "marker" {
		b, _ := json.Marshal(takenMarker{Size: st.Size(), ModTime: st.ModTime(), SHA256: doc.SHA256,
			DocumentID: doc.ID, BatchID: batch.ID, TakenAt: time.Now().UTC()})
		return writeFileAtomic(w.markerPath(rel), append(b, '\n'))
	}
	_, err := w.moveTo(doneDir, rel)
	return err
}

// fail moves the file to .failed, with NAME.reason.txt beside it saying why (the reason
// names no file and holds nothing of its content).
func (w *watcher) fail(rel, reason string) {
	log := w.a.log.With("file", fileID(rel))
	dst, err := w.moveTo(failedDir, rel)
	if err != nil {
		log.Warn("watch: file failed and could not be moved to "+failedDir, "reason", reason, "error", errorsCause(err))
		return
	}
	delete(w.seen, rel)
	if err := writeFileAtomic(dst+".reason.txt", []byte(reason+"\n")); err != nil {
		log.Warn("watch: cannot write the failed file's reason", "error", errorsCause(err))
	}
	log.Warn("watch: file failed: moved to "+failedDir, "reason", reason)
}

// moveTo moves DIR/rel to DIR/sub/rel, or to DIR/sub/NAME-2.EXT (-3, …) when a file taken
// before has its name, and returns where it went.
func (w *watcher) moveTo(sub, rel string) (string, error) {
	src := filepath.Join(w.dir, filepath.FromSlash(rel))
	dst := filepath.Join(w.dir, sub, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return "", err
	}
	ext := filepath.Ext(dst)
	base := strings.TrimSuffix(dst, ext)
	for n := 2; ; n++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d%s", base, n, ext)
	}
	return dst, os.Rename(src, dst)
}

// writeFileAtomic writes a small file whole or not at all.
func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
