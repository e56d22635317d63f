package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/minio/minio-go/v7/pkg/tags"

	"github.com/chartscan/chartscan"
)

// OpenIntakeBatch returns the open batch of source (chartscan.BatchIntake, BatchFolder)
// labelled label, the scanners' prefix or subfolder its files came from. One that took
// no file for idle is closed and a new one opened, so a box's files are one batch and the
// same prefix used again another day starts a new one. Processes taking files at the same
// time agree on the batch: they take turns per label (an advisory lock), and a unique
// index lets only one batch of a label be open.
func (db *DB) OpenIntakeBatch(ctx context.Context, source, label string, idle time.Duration) (chartscan.Batch, error) {
	b := chartscan.Batch{Source: source, Label: label}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return b, fmt.Errorf("open intake batch: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('chartscan.intake:' || $1 || ':' || $2, 0))`,
		source, label); err != nil {
		return b, fmt.Errorf("open intake batch: %w", err)
	}
	var fresh bool
	err = tx.QueryRow(ctx, `
		SELECT b.id::text, b.urgent, b.created_at,
		       $3::float8 <= 0 OR greatest(b.created_at, (SELECT max(bd.added_at) FROM batch_documents bd WHERE bd.batch_id = b.id))
		                          > now() - make_interval(secs => $3::float8)
		FROM batches b WHERE b.source = $1 AND b.label = $2 AND b.closed_at IS NULL`,
		source, label, idle.Seconds()).Scan(&b.ID, &b.Urgent, &b.CreatedAt, &fresh)
	switch {
	case err == nil && fresh:
		return b, tx.Commit(ctx)
	case err == nil:
		if _, err := tx.Exec(ctx, `UPDATE batches SET closed_at = now() WHERE id = $1`, b.ID); err != nil {
			return b, fmt.Errorf("close idle intake batch: %w", err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return b, fmt.Errorf("open intake batch: %w", err)
	}
	b.ID, b.Urgent = uuid.NewString(), false
	if err := tx.QueryRow(ctx, `INSERT INTO batches (id, label, source) VALUES ($1, $2, $3) RETURNING created_at`,
		b.ID, label, source).Scan(&b.CreatedAt); err != nil {
		return b, fmt.Errorf("open intake batch: %w", err)
	}
	return b, tx.Commit(ctx)
}

// TakenPrefix is where the inbox's objects go once taken (InboxObject keys keep their
// path below the inbox prefix), and TakenTag the tag that marks them taken instead.
const (
	TakenPrefix = "taken/"
	TakenTag    = "chartscan-taken"
)

// ErrChanged is returned when an inbox object was replaced since it was looked at.
var ErrChanged = errors.New("object changed since it was listed")

// Inbox is the bucket the scanners write to (`chartscan intake`): the objects under
// Prefix are taken into batches, then moved under TakenPrefix or tagged TakenTag.
type Inbox struct {
	mc             *minio.Client
	Bucket, Prefix string
}

// InboxObject is an object of the inbox as listed or looked at.
type InboxObject struct {
	Key   string
	Size  int64
	ETag  string
	Taken bool // tagged TakenTag
}

// Inbox opens the scanners' bucket on the same MinIO server, making it (encrypted at rest
// as the Objects' bucket is, see ObjectsConfig.Encryption) if it does not exist.
func (o *Objects) Inbox(ctx context.Context, bucket, prefix, encryption string) (*Inbox, error) {
	ok, err := o.mc.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("inbox bucket %s: %w", bucket, err)
	}
	if !ok {
		if err := o.mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			if ok2, err2 := o.mc.BucketExists(ctx, bucket); err2 != nil || !ok2 {
				return nil, fmt.Errorf("make inbox bucket %s: %w", bucket, err)
			}
		}
	}
	if err := setEncryption(ctx, o.mc, bucket, encryption); err != nil {
		return nil, err
	}
	return &Inbox{mc: o.mc, Bucket: bucket, Prefix: prefix}, nil
}

// Listen calls created with the key of every object created under the prefix, as MinIO
// notifies it (s3:ObjectCreated:*, sent once an object is complete: a multipart upload
// when it is completed), until ctx ends (nil) or the notifications stop (the error): the
// caller listens again and lists the inbox for what it missed meanwhile.
func (b *Inbox) Listen(ctx context.Context, created func(key string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's reader
	for info := range b.mc.ListenBucketNotification(ctx, b.Bucket, b.Prefix, "", []string{string(notification.ObjectCreatedAll)}) {
		if info.Err != nil {
			if ctx.Err() != nil {
				return nil // stopped by the caller: minio-go reports the cancel as an error
			}
			return fmt.Errorf("bucket notifications: %w", info.Err)
		}
		for _, ev := range info.Records {
			// Keys arrive URL-encoded, as S3 events carry them.
			if key, err := url.QueryUnescape(ev.S3.Object.Key); err == nil {
				created(key)
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("bucket notifications: the connection ended")
}

// List calls fn for every object under the prefix.
func (b *Inbox) List(ctx context.Context, fn func(InboxObject) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range b.mc.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: b.Prefix, Recursive: true, WithMetadata: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list the inbox: %w", oi.Err)
		}
		_, taken := oi.UserTags[TakenTag]
		if !fn(InboxObject{Key: oi.Key, Size: oi.Size, ETag: oi.ETag, Taken: taken}) {
			return nil
		}
	}
	return ctx.Err()
}

// Stat looks at one object; a missing one is ErrNoObject. Errors never name the key
// (keys are the scanners' file names).
func (b *Inbox) Stat(ctx context.Context, key string) (InboxObject, error) {
	oi, err := b.mc.StatObject(ctx, b.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return InboxObject{}, ErrNoObject
		}
		return InboxObject{}, fmt.Errorf("stat inbox object: %w", err)
	}
	o := InboxObject{Key: key, Size: oi.Size, ETag: oi.ETag}
	if oi.UserTagCount > 0 {
		t, err := b.mc.GetObjectTagging(ctx, b.Bucket, key, minio.GetObjectTaggingOptions{})
		if err != nil {
			return o, fmt.Errorf("read inbox object's tags: %w", err)
		}
		_, o.Taken = t.ToMap()[TakenTag]
	}
	return o, nil
}

// Open reads the object as it was when looked at (etag); one replaced since is ErrChanged,
// one gone ErrNoObject.
func (b *Inbox) Open(ctx context.Context, key, etag string) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(etag); err != nil {
		return nil, err
	}
	obj, err := b.mc.GetObject(ctx, b.Bucket, key, opts)
	if err == nil {
		_, err = obj.Stat() // GetObject is lazy: fail here, not at the first Read
		if err != nil {
			obj.Close()
		}
	}
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		return obj, nil
	case code == minio.NoSuchKey:
		return nil, ErrNoObject
	case code == "PreconditionFailed":
		return nil, ErrChanged
	default:
		return nil, fmt.Errorf("read inbox object: %w", err)
	}
}

// TakenKey is where Move puts key.
func (b *Inbox) TakenKey(key string) string {
	return TakenPrefix + strings.TrimPrefix(key, b.Prefix)
}

// Move moves the object as it was when looked at (etag) to TakenKey(key), overwriting an
// object taken before under that name (its content is stored by its SHA-256). An object
// replaced meanwhile is copied not at all (ErrChanged) or, replaced after the copy, left
// in the inbox to be taken again.
func (b *Inbox) Move(ctx context.Context, key, etag string) error {
	_, err := b.mc.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: b.Bucket, Object: b.TakenKey(key)},
		minio.CopySrcOptions{Bucket: b.Bucket, Object: key, MatchETag: etag})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
	case code == minio.NoSuchKey:
		return ErrNoObject
	case code == "PreconditionFailed":
		return ErrChanged
	default:
		return fmt.Errorf("move inbox object to %s: %w", TakenPrefix, err)
	}
	if now, err := b.Stat(ctx, key); err != nil || now.ETag != etag {
		return err // gone, or replaced after the copy: the new one is taken in its turn
	}
	if err := b.mc.RemoveObject(ctx, b.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("remove taken inbox object: %w", err)
	}
	return nil
}

// Tag marks the object taken where it is: TakenTag = value, beside the tags it has. If
// it was replaced meanwhile, the tag is taken off again so the new content is taken too.
func (b *Inbox) Tag(ctx context.Context, key, etag, value string) error {
	if err := b.setTag(ctx, key, value); err != nil {
		return err
	}
	if now, err := b.Stat(ctx, key); err == nil && now.ETag != etag {
		if err := b.setTag(ctx, key, ""); err != nil {
			return fmt.Errorf("untag a replaced inbox object: %w", err)
		}
		return ErrChanged
	}
	return nil
}

// setTag sets TakenTag to value, or takes it off for "", keeping the object's other tags.
func (b *Inbox) setTag(ctx context.Context, key, value string) error {
	t, err := b.mc.GetObjectTagging(ctx, b.Bucket, key, minio.GetObjectTaggingOptions{})
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return ErrNoObject
	} else if err != nil {
		return fmt.Errorf("read inbox object's tags: %w", err)
	}
	m := t.ToMap()
	if value == "" {
		delete(m, TakenTag)
	} else {
		m[TakenTag] = value
	}
	if len(m) == 0 {
		err = b.mc.RemoveObjectTagging(ctx, b.Bucket, key, minio.RemoveObjectTaggingOptions{})
	} else if t, err = tags.NewTags(m, true); err == nil {
		err = b.mc.PutObjectTagging(ctx, b.Bucket, key, t, minio.PutObjectTaggingOptions{})
	}
	if err != nil {
		return fmt.Errorf("tag inbox object: %w", err)
	}
	return nil
}
