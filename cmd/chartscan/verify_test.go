package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/chartscan/chartscan/storage"
)

// TestVerifyReportsMissingAndChangedOriginals: `chartscan verify` reads every stored
// original back and checks it against its SHA-256: all well, it says so and exits 0;
// with one original deleted and another overwritten behind chartscan's back, it names
// both (file and document) and exits 1.
func TestVerifyReportsMissingAndChangedOriginals(t *testing.T) {
	s := newStack(t)
	charts := []string{"chart-001.pdf", "chart-002.pdf", "chart-003.pdf"}
	sha := map[string]string{}
	for _, c := range charts {
		b := mustRead(t, "../../testdata/charts/"+c)
		h := sha256.Sum256(b)
		sha[c] = hex.EncodeToString(h[:])
	}
	s.mustRun("ingest", "../../testdata/charts") // no worker: the originals are stored all the same

	out, errs, code := s.run("verify")
	if code != 0 || !strings.Contains(out, "verified 3 originals") || !strings.Contains(out, "0 missing, 0 changed") {
		t.Fatalf("verify of intact originals: exit %d\n%s%s", code, out, errs)
	}

	mc, err := minio.New(s.getenv("MINIO_ENDPOINT"), &minio.Options{
		Creds: credentials.NewStaticV4(s.getenv("MINIO_ACCESS_KEY"), s.getenv("MINIO_SECRET_KEY"), "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, bucket := context.Background(), s.getenv("MINIO_BUCKET")
	if err := mc.RemoveObject(ctx, bucket, storage.OriginalKey(sha["chart-001.pdf"]), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	forged := "%PDF-1.4 not what was uploaded"
	if _, err := mc.PutObject(ctx, bucket, storage.OriginalKey(sha["chart-003.pdf"]), strings.NewReader(forged), int64(len(forged)),
		minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
		t.Fatal(err)
	}
	out, errs, code = s.run("verify")
	if code != 1 {
		t.Errorf("verify with a deleted and a changed original: exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{"missing: chart-001.pdf", "changed: chart-003.pdf", "1 missing, 1 changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chart-002.pdf") {
		t.Errorf("verify reports the intact chart-002.pdf:\n%s", out)
	}
	if out := s.mustRun("audit", "list", "--action", "originals.verify"); strings.Count(out, "originals.verify") < 2 {
		t.Errorf("the runs are not in the audit log:\n%s", out)
	}
}
