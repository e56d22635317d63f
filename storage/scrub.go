package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
)

// Original is an uploaded file as PostgreSQL records it: the content address it is
// stored under and the name it came with.
type Original struct {
	DocumentID string
	SHA256     string
	FileName   string
	Size       int64
}

// Originals calls fn for every document's original, oldest first.
func (db *DB) Originals(ctx context.Context, fn func(Original) error) error {
	rows, err := db.pool.Query(ctx, `SELECT id::text, sha256, file_name, size FROM documents ORDER BY created_at, id`)
	if err != nil {
		return fmt.Errorf("originals: %w", err)
	}
	var o Original
	_, err = pgx.ForEachRow(rows, []any{&o.DocumentID, &o.SHA256, &o.FileName, &o.Size}, func() error { return fn(o) })
	if err != nil {
		return fmt.Errorf("originals: %w", err)
	}
	return nil
}

// Hash reads the object at key through and returns its SHA-256 (hex) and size. A
// missing object is ErrNoObject.
func (o *Objects) Hash(ctx context.Context, key string) (sha string, n int64, err error) {
	rc, err := o.Get(ctx, key)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	if n, err = io.Copy(h, rc); err != nil {
		return "", n, fmt.Errorf("read %s: %w", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// incomingPrefix is where an upload goes before its content address is known (see
// PutOriginal).
const incomingPrefix = "incoming/"

// Leftovers lists what interrupted uploads left in the bucket, older than age: objects
// still under their temporary key (the store went away before the upload was filed and
// the temporary key removed) and multipart uploads never completed. Neither is a
// document; removing them loses nothing.
func (o *Objects) Leftovers(ctx context.Context, age time.Duration) ([]string, error) {
	var out []string
	cutoff := time.Now().Add(-age)
	for obj := range o.mc.ListObjects(ctx, o.bucket, minio.ListObjectsOptions{Prefix: incomingPrefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", incomingPrefix, obj.Err)
		}
		if obj.LastModified.Before(cutoff) {
			out = append(out, obj.Key)
		}
	}
	for up := range o.mc.ListIncompleteUploads(ctx, o.bucket, "", true) {
		if up.Err != nil {
			return nil, fmt.Errorf("list incomplete uploads: %w", up.Err)
		}
		if up.Initiated.Before(cutoff) {
			out = append(out, "upload:"+up.Key)
		}
	}
	return out, nil
}

// RemoveLeftover removes one of Leftovers' results.
func (o *Objects) RemoveLeftover(ctx context.Context, leftover string) error {
	var err error
	if key, ok := strings.CutPrefix(leftover, "upload:"); ok {
		err = o.mc.RemoveIncompleteUpload(ctx, o.bucket, key)
	} else if strings.HasPrefix(leftover, incomingPrefix) {
		err = o.mc.RemoveObject(ctx, o.bucket, leftover, minio.RemoveObjectOptions{})
	} else {
		return errors.New("not a leftover: " + leftover)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", leftover, err)
	}
	return nil
}
