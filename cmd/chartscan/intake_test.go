package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/pdfcpu/pdfcpu/pkg/api"
)

// Scans that come with no command run: the scanners' bucket (`chartscan intake`) and a
// watched folder (`chartscan watch`), issue 15 item 1.

// startCmd starts a long-running chartscan command with extra environment; it is stopped
// with SIGTERM when the test ends, if it still runs.
func (s *stack) startCmd(extra []string, args ...string) *proc {
	s.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append([]string{}, s.env...), extra...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: s.logs}
	s.t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

// stopped stops p with SIGTERM and fails the test unless it exits 0.
func stopped(t *testing.T, p *proc) {
	t.Helper()
	p.stop(syscall.SIGTERM)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s stopped with SIGTERM: exit %d, want 0", strings.Join(p.cmd.Args[1:], " "), code)
	}
}

// chartVariant is a sample chart with other bytes (a document property), so another
// SHA-256, and the same pages; with pad > 0, pad random bytes ride along as an
// attachment, making it as large as a scanner's big files.
func chartVariant(t *testing.T, src, tag string, pad int) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := api.AddProperties(bytes.NewReader(mustRead(t, src)), &out, map[string]string{"ChartscanTest": tag}, nil); err != nil {
		t.Fatalf("variant of %s: %v", src, err)
	}
	if pad == 0 {
		return out.Bytes()
	}
	att := filepath.Join(t.TempDir(), "padding.bin")
	b := make([]byte, pad)
	rand.Read(b)
	if err := os.WriteFile(att, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var big bytes.Buffer
	if err := api.AddAttachments(bytes.NewReader(out.Bytes()), &big, []string{att}, false, nil); err != nil {
		t.Fatalf("attach padding to %s: %v", src, err)
	}
	return big.Bytes()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// intakeCounts is what the database holds: documents, batch entries, and pages not final.
type intakeCounts struct{ docs, entries, unfinished int }

func countIntake(t *testing.T, conn *pgx.Conn) intakeCounts {
	t.Helper()
	var c intakeCounts
	err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM batch_documents),
		(SELECT count(*) FROM documents WHERE status NOT IN ('done', 'failed')) + (SELECT count(*) FROM pages WHERE status = 'pending')`).
		Scan(&c.docs, &c.entries, &c.unfinished)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// intakeBatches maps each scanners' batch, "source: label", to its file names.
func intakeBatches(t *testing.T, conn *pgx.Conn) map[string][]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT b.source || ': ' || b.label, bd.file_name
		FROM batches b JOIN batch_documents bd ON bd.batch_id = b.id WHERE b.closed_at IS NULL ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	var k, f string
	_, err = pgx.ForEachRow(rows, []any{&k, &f}, func() error { out[k] = append(out[k], f); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func logCount(s *stack, what string) int { return strings.Count(s.logs.String(), what) }

// checkNamesNotLogged fails if a scanner's file name (PHI-ish) appears in a log.
func checkNamesNotLogged(t *testing.T, s *stack, names ...string) {
	t.Helper()
	logs := s.logs.String()
	for _, n := range names {
		if i := strings.Index(logs, n); i >= 0 {
			t.Errorf("a file name (%s) is in the logs: …%s…", n, logs[max(0, i-120):min(len(logs), i+60)])
		}
	}
}

func TestIntakeTakesScansFromTheBucket(t *testing.T) {
	s := newStack(t)
	inbox := s.getenv("MINIO_BUCKET") + "-inbox"
	// A listing every 5 s besides the notifications: the local MinIO build holds its
	// notification stream back (README, intake), so they may not arrive in time.
	s.env = append(s.env, "CHARTSCAN_INTAKE_BUCKET="+inbox, "CHARTSCAN_INTAKE_RESCAN=5s")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	conn := s.dbConn()
	ctx := context.Background()
	mc, err := minio.New(s.getenv("MINIO_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(s.getenv("MINIO_ACCESS_KEY"), s.getenv("MINIO_SECRET_KEY"), "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, inbox, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mc.RemoveBucketWithOptions(context.Background(), inbox, minio.RemoveBucketOptions{ForceDelete: true})
	})
	put := func(key string, b []byte, opts minio.PutObjectOptions) {
		t.Helper()
		if _, err := mc.PutObject(ctx, inbox, key, bytes.NewReader(b), int64(len(b)), opts); err != nil {
			t.Fatalf("put an object: %v", err)
		}
	}
	keys := func(prefix string) map[string]map[string]string {
		out := map[string]map[string]string{}
		for o := range mc.ListObjects(ctx, inbox, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			tags, err := mc.GetObjectTagging(ctx, inbox, o.Key, minio.GetObjectTaggingOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(o.Key, prefix)] = tags.ToMap()
		}
		return out
	}
	c1, c2, c3 := mustRead(t, "../../testdata/charts/chart-001.pdf"), mustRead(t, "../../testdata/charts/chart-002.pdf"), mustRead(t, "../../testdata/charts/chart-003.pdf")

	// What the scanners wrote before intake ran: two scans of one box, a 6 MiB scan of
	// another sent in 5 MiB parts, and what intake leaves alone — a note, a hidden
	// temporary file, an empty object.
	put("inbox/ward-3/box-0001/smith-chart-001.pdf", c1, minio.PutObjectOptions{})
	put("inbox/ward-3/box-0001/jones-chart-002.pdf", c2, minio.PutObjectOptions{})
	big := chartVariant(t, "../../testdata/charts/chart-003.pdf", "big", 6<<20)
	put("inbox/ward-5/box-0042/big-scan.pdf", big, minio.PutObjectOptions{PartSize: 5 << 20})
	put("inbox/ward-3/box-0001/notes.txt", []byte("not a scan"), minio.PutObjectOptions{})
	put("inbox/ward-3/box-0001/.upload-in-progress.pdf", c3, minio.PutObjectOptions{})
	put("inbox/ward-3/box-0001/empty.pdf", nil, minio.PutObjectOptions{})
	leftAlone := []string{"ward-3/box-0001/notes.txt", "ward-3/box-0001/.upload-in-progress.pdf", "ward-3/box-0001/empty.pdf"}

	// A multipart upload in progress: one part of two is in.
	core := minio.Core{Client: mc}
	slow := chartVariant(t, "../../testdata/charts/chart-003.pdf", "slow", 6<<20)
	const slowKey = "inbox/ward-5/box-0042/slow-scan.pdf"
	uploadID, err := core.NewMultipartUpload(ctx, inbox, slowKey, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part1, err := core.PutObjectPart(ctx, inbox, slowKey, uploadID, 1, bytes.NewReader(slow[:5<<20]), 5<<20, minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}

	in1 := s.startCmd(nil, "intake")
	waitFor(t, 2*time.Minute, "the three scans taken", func() bool {
		return countIntake(t, conn).docs == 3 && len(keys("taken/")) == 3
	})
	// Listed at least twice since it started, the upload in progress is not taken.
	listed := logCount(s, "intake: inbox listed")
	waitFor(t, 30*time.Second, "two more listings", func() bool { return logCount(s, "intake: inbox listed") >= listed+2 })
	if c := countIntake(t, conn); c.docs != 3 {
		t.Fatalf("%d documents while a multipart upload is in progress, want 3", c.docs)
	}
	if _, ok := keys("inbox/")["ward-5/box-0042/slow-scan.pdf"]; ok {
		t.Fatal("the multipart upload in progress is an object already")
	}
	// The upload completes while intake runs: taken on its notification or the next listing.
	part2, err := core.PutObjectPart(ctx, inbox, slowKey, uploadID, 2, bytes.NewReader(slow[5<<20:]), int64(len(slow)-5<<20), minio.PutObjectPartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.CompleteMultipartUpload(ctx, inbox, slowKey, uploadID,
		[]minio.CompletePart{{PartNumber: 1, ETag: part1.ETag}, {PartNumber: 2, ETag: part2.ETag}}, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the completed multipart upload taken", func() bool {
		return countIntake(t, conn).docs == 4
	})
	t.Logf("scans brought by a notification: %d", logCount(s, "intake: scan notified"))
	stopped(t, in1)

	// While no intake runs: a scan of the first box, the first scan's content again in
	// another box, a scan at the top of a station's prefix.
	put("inbox/ward-3/box-0001/doe-chart-003.pdf", c3, minio.PutObjectOptions{})
	put("inbox/ward-3/box-0002/copy-of-smith.pdf", c1, minio.PutObjectOptions{})
	put("inbox/ward-7/loose-scan.pdf", chartVariant(t, "../../testdata/charts/chart-003.pdf", "loose", 0), minio.PutObjectOptions{})

	// Two intakes at once, started after: each scan is taken once, by one of them.
	in2, in3 := s.startCmd(nil, "intake"), s.startCmd(nil, "intake")
	waitFor(t, 5*time.Minute, "every scan taken and every page final", func() bool {
		c := countIntake(t, conn)
		return c.entries == 7 && c.unfinished == 0 && len(keys("inbox/")) == len(leftAlone)
	})
	stopped(t, in2)
	stopped(t, in3)

	if c := countIntake(t, conn); c.docs != 6 || c.entries != 7 {
		t.Errorf("%d documents, %d batch entries; want 6 documents (the copy is one of them) and 7 entries", c.docs, c.entries)
	}
	if n := logCount(s, "intake: scan taken"); n != 7 {
		t.Errorf("%d scans taken, want 7: each once", n)
	}
	wantBatches := map[string][]string{
		"intake: ward-3/box-0001": {"doe-chart-003.pdf", "jones-chart-002.pdf", "smith-chart-001.pdf"},
		"intake: ward-3/box-0002": {"copy-of-smith.pdf"},
		"intake: ward-5/box-0042": {"big-scan.pdf", "slow-scan.pdf"},
		"intake: ward-7":          {"loose-scan.pdf"},
	}
	got := intakeBatches(t, conn)
	for k, want := range wantBatches {
		if !slices.Equal(got[k], want) {
			t.Errorf("batch %q holds %v, want %v", k, got[k], want)
		}
	}
	if len(got) != len(wantBatches) {
		t.Errorf("batches %v, want %v", got, wantBatches)
	}
	var left []string
	for k := range keys("inbox/") {
		left = append(left, k)
	}
	slices.Sort(left)
	if want := slices.Sorted(slices.Values(leftAlone)); !slices.Equal(left, want) {
		t.Errorf("left in the inbox: %v, want %v", left, want)
	}
	taken := keys("taken/")
	for _, k := range []string{"ward-3/box-0001/smith-chart-001.pdf", "ward-3/box-0001/jones-chart-002.pdf", "ward-3/box-0001/doe-chart-003.pdf",
		"ward-3/box-0002/copy-of-smith.pdf", "ward-5/box-0042/big-scan.pdf", "ward-5/box-0042/slow-scan.pdf", "ward-7/loose-scan.pdf"} {
		if _, ok := taken[k]; !ok {
			t.Errorf("taken/%s missing; taken: %v", k, taken)
		}
	}
	var bigSHA, slowSHA int
	conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE sha256 = $1), count(*) FILTER (WHERE sha256 = $2) FROM documents`, sha(big), sha(slow)).Scan(&bigSHA, &slowSHA)
	if bigSHA != 1 || slowSHA != 1 {
		t.Errorf("the multipart scans stored whole: %d and %d documents of their SHA-256, want 1 each", bigSHA, slowSHA)
	}

	// Marked taken by a tag instead: the scan stays where it is, and a listing after a
	// restart leaves it.
	tag := []string{"CHARTSCAN_INTAKE_TAKEN=tag"}
	in4 := s.startCmd(tag, "intake")
	put("inbox/ward-9/tagged-scan.pdf", chartVariant(t, "../../testdata/charts/chart-003.pdf", "tagged", 0), minio.PutObjectOptions{})
	var docID string
	waitFor(t, time.Minute, "the scan tagged taken", func() bool {
		docID = keys("inbox/")["ward-9/tagged-scan.pdf"]["chartscan-taken"]
		return docID != ""
	})
	stopped(t, in4)
	var n int
	if conn.QueryRow(ctx, `SELECT count(*) FROM documents WHERE id::text = $1`, docID).Scan(&n); n != 1 {
		t.Errorf("the tag names document %q, which is not stored", docID)
	}
	listed = logCount(s, "intake: inbox listed")
	in5 := s.startCmd(tag, "intake")
	waitFor(t, time.Minute, "the restarted intake's listing", func() bool { return logCount(s, "intake: inbox listed") > listed })
	time.Sleep(2 * time.Second)
	stopped(t, in5)
	if n := logCount(s, "intake: scan taken"); n != 8 {
		t.Errorf("%d scans taken after the tagged one's restart, want 8", n)
	}

	// The clerk's batch list shows the scanners' batches, and their pages.
	srv := s.startServe()
	clerk := signedIn(t, srv, "cleo", s.addUser("cleo", "clerk"))
	st, body := clerk.do("GET", "/batches", nil)
	for k := range wantBatches {
		if st != 200 || !strings.Contains(body, strings.Replace(k, ": ", `: </span>`, 1)) {
			t.Errorf("the clerk's batch list (%d) does not show %q", st, k)
		}
	}
	var batchID string
	conn.QueryRow(ctx, `SELECT id::text FROM batches WHERE label = 'ward-3/box-0001'`).Scan(&batchID)
	if st, body := clerk.do("GET", "/batches/"+batchID, nil); st != 200 || !strings.Contains(body, "jones-chart-002.pdf") {
		t.Errorf("the clerk's view of an intake batch: %d", st)
	}
	checkNamesNotLogged(t, s, "smith-chart", "jones-chart", "doe-chart", "big-scan", "slow-scan", "loose-scan", "tagged-scan", "box-0001", "ward-3")
}

func TestWatchTakesScansFromAFolder(t *testing.T) {
	s := newStack(t, "CHARTSCAN_WATCH_SETTLE=3s")
	s.mustRun("records", "import", "../../testdata/empi/sample.csv")
	s.startWorker()
	conn := s.dbConn()
	dir := t.TempDir()
	write := func(rel string, b []byte) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		return err == nil
	}
	c1, c2, c3 := mustRead(t, "../../testdata/charts/chart-001.pdf"), mustRead(t, "../../testdata/charts/chart-002.pdf"), mustRead(t, "../../testdata/charts/chart-003.pdf")
	write("ward-3/box-0001/smith-chart-001.pdf", c1)
	write("ward-3/box-0001/jones-chart-002.pdf", c2)
	write("loose-scan.pdf", chartVariant(t, "../../testdata/charts/chart-003.pdf", "loose", 0))
	write("ward-3/box-0001/empty.pdf", nil)
	write("ward-3/.scanning.pdf", c3)
	write("ward-3/notes.txt", []byte("not a scan"))

	w1 := s.startCmd(nil, "watch", dir)
	waitFor(t, 2*time.Minute, "the three scans taken and the empty file failed", func() bool {
		return countIntake(t, conn).docs == 3 && exists(".done/loose-scan.pdf") && exists(".done/ward-3/box-0001/jones-chart-002.pdf") &&
			exists(".done/ward-3/box-0001/smith-chart-001.pdf") && exists(".failed/ward-3/box-0001/empty.pdf.reason.txt")
	})
	if reason, _ := os.ReadFile(filepath.Join(dir, ".failed/ward-3/box-0001/empty.pdf.reason.txt")); !strings.Contains(string(reason), "empty") {
		t.Errorf("the empty file's reason: %q", reason)
	}

	// A file still being written, a step a second (less than the settle time): not taken
	// until it is whole and still.
	growing := chartVariant(t, "../../testdata/charts/chart-003.pdf", "growing", 0)
	const growRel = "ward-5/box-0042/slow-scan.pdf"
	step := len(growing)/4 + 1
	for i := 0; i < len(growing); i += step {
		f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(growRel)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			os.MkdirAll(filepath.Join(dir, "ward-5/box-0042"), 0o755)
			f, err = os.OpenFile(filepath.Join(dir, filepath.FromSlash(growRel)), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
		}
		f.Write(growing[i:min(i+step, len(growing))])
		f.Close()
		time.Sleep(time.Second)
		if !exists(growRel) || countIntake(t, conn).docs != 3 {
			t.Fatalf("the file being written was taken after %d of %d bytes", min(i+step, len(growing)), len(growing))
		}
	}
	waitFor(t, time.Minute, "the written file taken once still", func() bool { return exists(".done/" + growRel) })
	var whole int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM documents WHERE sha256 = $1`, sha(growing)).Scan(&whole)
	if c := countIntake(t, conn); c.docs != 4 || whole != 1 {
		t.Errorf("after the written file: %d documents, %d of its whole content; want 4 and 1", c.docs, whole)
	}
	stopped(t, w1)

	// While no watch runs: a scan of the first box, the first scan's content again in
	// another box. Then two watches at once.
	write("ward-3/box-0001/doe-chart-003.pdf", c3)
	write("ward-3/box-0002/copy-of-smith.pdf", c1)
	w2, w3 := s.startCmd(nil, "watch", dir), s.startCmd(nil, "watch", dir)
	waitFor(t, 5*time.Minute, "every file taken and every page final", func() bool {
		c := countIntake(t, conn)
		return c.entries == 6 && c.unfinished == 0 && exists(".done/ward-3/box-0002/copy-of-smith.pdf") && exists(".done/ward-3/box-0001/doe-chart-003.pdf")
	})
	stopped(t, w2)
	stopped(t, w3)
	if c := countIntake(t, conn); c.docs != 5 || c.entries != 6 {
		t.Errorf("%d documents, %d batch entries; want 5 documents (the copy is one of them) and 6 entries", c.docs, c.entries)
	}
	if n := logCount(s, "watch: file taken"); n != 6 {
		t.Errorf("%d files taken, want 6: each once", n)
	}
	wantBatches := map[string][]string{
		"folder: ":                {"loose-scan.pdf"},
		"folder: ward-3/box-0001": {"doe-chart-003.pdf", "jones-chart-002.pdf", "smith-chart-001.pdf"},
		"folder: ward-3/box-0002": {"copy-of-smith.pdf"},
		"folder: ward-5/box-0042": {"slow-scan.pdf"},
	}
	got := intakeBatches(t, conn)
	for k, want := range wantBatches {
		if !slices.Equal(got[k], want) {
			t.Errorf("batch %q holds %v, want %v", k, got[k], want)
		}
	}
	if len(got) != len(wantBatches) {
		t.Errorf("batches %v, want %v", got, wantBatches)
	}
	for _, rel := range []string{"ward-3/.scanning.pdf", "ward-3/notes.txt"} {
		if !exists(rel) {
			t.Errorf("%s was not left alone", rel)
		}
	}

	// Left with a marker instead: the file stays, and a restarted watch leaves it.
	marker := []string{"CHARTSCAN_WATCH_TAKEN=marker"}
	w4 := s.startCmd(marker, "watch", dir)
	write("ward-9/marked-scan.pdf", chartVariant(t, "../../testdata/charts/chart-003.pdf", "marked", 0))
	waitFor(t, time.Minute, "the file marked taken", func() bool { return exists("ward-9/.marked-scan.pdf.chartscan-taken") })
	stopped(t, w4)
	w5 := s.startCmd(marker, "watch", dir)
	time.Sleep(8 * time.Second) // more than twice the settle time
	stopped(t, w5)
	if n := logCount(s, "watch: file taken"); n != 7 || !exists("ward-9/marked-scan.pdf") {
		t.Errorf("%d files taken after the marked one's restart, want 7; the file is in place: %v", n, exists("ward-9/marked-scan.pdf"))
	}
	checkNamesNotLogged(t, s, "smith-chart", "jones-chart", "doe-chart", "slow-scan", "loose-scan", "marked-scan", "box-0001", "ward-3", "empty.pdf")
}
