package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/chartscan/chartscan/internal/stacktest"
)

// With encryption configured, everything stored is encrypted at rest by MinIO's KMS (the
// local stack runs MinIO with a static key), and a second start keeps the setting.
func TestObjectsEncryptedAtRest(t *testing.T) {
	env := stacktest.New(t)
	ctx := context.Background()
	cfg := ObjectsConfig{Endpoint: env.MinIO, AccessKey: env.AccessKey, SecretKey: env.SecretKey, Bucket: env.Bucket, Encryption: "s3"}
	o, err := NewObjects(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewObjects(ctx, cfg); err != nil {
		t.Fatalf("second start: %v", err)
	}
	sha, _, err := o.PutOriginal(ctx, strings.NewReader("%PDF-1.4 a scan"), -1, "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Put(ctx, PageImageKey("d", 1, "png"), strings.NewReader("png"), 3, "image/png"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{OriginalKey(sha), PageImageKey("d", 1, "png")} {
		info, err := o.mc.StatObject(ctx, env.Bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("%s: server-side encryption %q, want AES256 (SSE-S3)", key, got)
		}
	}
	cfg.Encryption = "rot13"
	if _, err := NewObjects(ctx, cfg); err == nil || !strings.Contains(err.Error(), "want s3, kms:KEY or none") {
		t.Errorf("unknown encryption: %v", err)
	}
}
