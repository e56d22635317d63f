package storage

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/sse"
)

// ErrNoObject is returned when an object does not exist.
var ErrNoObject = errors.New("no such object")

// ObjectsConfig says where the MinIO server is and which bucket holds chartscan's objects.
type ObjectsConfig struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	UseSSL    bool
	// RootCAs verify MinIO's certificate when UseSSL, in place of the system's CAs: a
	// private CA's. Nil: the system's (and SSL_CERT_FILE's).
	RootCAs *x509.CertPool
	// Encryption is the bucket's default server-side encryption, so every scan, page
	// image and OCR text is encrypted at rest by MinIO's KMS: "s3" (SSE-S3, the
	// server's key), "kms:KEY" (SSE-KMS with that key), or "none". Empty means none.
	Encryption string
}

// Objects stores scans, page images and OCR artefacts in one MinIO bucket.
type Objects struct {
	mc     *minio.Client
	bucket string
}

// NewObjects connects to MinIO and makes the bucket if it does not exist yet.
func NewObjects(ctx context.Context, cfg ObjectsConfig) (*Objects, error) {
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
	}
	if cfg.UseSSL && cfg.RootCAs != nil {
		// minio-go's own transport (its timeouts, TLS 1.2 at least), with the CA.
		tr, err := minio.DefaultTransport(true)
		if err != nil {
			return nil, fmt.Errorf("minio client: %w", err)
		}
		tr.TLSClientConfig.RootCAs = cfg.RootCAs
		opts.Transport = tr
	}
	mc, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("minio client: %w", err)
	}
	ok, err := mc.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("minio at %s: %w", cfg.Endpoint, err)
	}
	if !ok {
		if err := mc.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{}); err != nil {
			// Another process may have made it between the two calls.
			if ok2, err2 := mc.BucketExists(ctx, cfg.Bucket); err2 != nil || !ok2 {
				return nil, fmt.Errorf("make bucket %s: %w", cfg.Bucket, err)
			}
		}
	}
	if err := setEncryption(ctx, mc, cfg.Bucket, cfg.Encryption); err != nil {
		return nil, err
	}
	return &Objects{mc: mc, bucket: cfg.Bucket}, nil
}

// setEncryption makes enc the bucket's default encryption, unless it is already.
func setEncryption(ctx context.Context, mc *minio.Client, bucket, enc string) error {
	var want *sse.Configuration
	switch {
	case enc == "" || enc == "none":
		return nil
	case enc == "s3":
		want = sse.NewConfigurationSSES3()
	case strings.HasPrefix(enc, "kms:") && len(enc) > len("kms:"):
		want = sse.NewConfigurationSSEKMS(strings.TrimPrefix(enc, "kms:"))
	default:
		return fmt.Errorf("object encryption %q: want s3, kms:KEY or none", enc)
	}
	if have, err := mc.GetBucketEncryption(ctx, bucket); err == nil && len(have.Rules) == 1 &&
		have.Rules[0].Apply == want.Rules[0].Apply {
		return nil
	}
	if err := mc.SetBucketEncryption(ctx, bucket, want); err != nil {
		return fmt.Errorf("encrypt bucket %s at rest (%s): %w — MinIO needs a KMS for that (MINIO_KMS_SECRET_KEY or KES), or set MINIO_SSE=none", bucket, enc, err)
	}
	return nil
}

// OriginalKey is the key of an uploaded file with the given SHA-256 (hex).
func OriginalKey(sha string) string { return "originals/" + sha }

// PageImageKey is the key of a page image; ext is the file extension without a dot.
func PageImageKey(documentID string, page int, ext string) string {
	return "pages/" + documentID + "/" + strconv.Itoa(page) + "." + ext
}

// PutOriginal streams an upload to MinIO once, hashing it on the way, and files it under
// its content address. It returns the SHA-256 (hex) and the size. size is -1 when unknown.
// The upload goes to a temporary key first because the address is known only at the end;
// a server-side copy then moves it, so the bytes cross the network once.
func (o *Objects) PutOriginal(ctx context.Context, r io.Reader, size int64, contentType string) (sha string, n int64, err error) {
	h := sha256.New()
	tmp := "incoming/" + uuid.NewString()
	// One PUT, not parts, up to 5 GiB (the most S3 takes in one): a MinIO that dies under
	// a multipart upload keeps the parts it took for a day, where no listing finds them;
	// a PUT cut off leaves nothing.
	info, err := o.mc.PutObject(ctx, o.bucket, tmp, io.TeeReader(r, h), size,
		minio.PutObjectOptions{ContentType: contentType, DisableMultipart: size >= 0 && size <= maxSinglePut})
	if err != nil {
		return "", 0, fmt.Errorf("upload: %w", err)
	}
	defer func() {
		if rerr := o.mc.RemoveObject(context.WithoutCancel(ctx), o.bucket, tmp, minio.RemoveObjectOptions{}); rerr != nil && err == nil {
			err = fmt.Errorf("remove temporary upload: %w", rerr)
		}
	}()
	sha = hex.EncodeToString(h.Sum(nil))
	key := OriginalKey(sha)
	if ok, err := o.Exists(ctx, key); err != nil {
		return "", 0, err
	} else if ok {
		return sha, info.Size, nil
	}
	_, err = o.mc.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: o.bucket, Object: key},
		minio.CopySrcOptions{Bucket: o.bucket, Object: tmp})
	if err != nil {
		return "", 0, fmt.Errorf("file upload under its content address: %w", err)
	}
	return sha, info.Size, nil
}

// maxSinglePut is the largest object S3 takes in one PUT.
const maxSinglePut = 5 << 30

// Put stores r under key. size is -1 when unknown.
func (o *Objects) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if _, err := o.mc.PutObject(ctx, o.bucket, key, r, size, minio.PutObjectOptions{ContentType: contentType}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get opens the object at key for reading; the caller closes it. A missing object is
// ErrNoObject.
func (o *Objects) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := o.mc.GetObject(ctx, o.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// GetObject is lazy; Stat makes a missing object fail here rather than at Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("get %s: %w", key, ErrNoObject)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return obj, nil
}

// GetFile downloads the object at key into the local file path.
func (o *Objects) GetFile(ctx context.Context, key, path string) error {
	if err := o.mc.FGetObject(ctx, o.bucket, key, path, minio.GetObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return fmt.Errorf("get %s: %w", key, ErrNoObject)
		}
		return fmt.Errorf("get %s: %w", key, err)
	}
	return nil
}

// Exists reports whether an object is stored at key.
func (o *Objects) Exists(ctx context.Context, key string) (bool, error) {
	_, err := o.mc.StatObject(ctx, o.bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", key, err)
}
