-- +goose Up
-- A page's OCR words (their JSON, a few kilobytes; TOAST compresses it) are kept in its
-- row: an object in MinIO per page cost two requests a page — about 7 ms of MinIO's CPU
-- with SSE-S3, most of what the coordination path spent outside the split (make
-- bench-scale). Pages read before keep words_key, which is read when words is null.
ALTER TABLE pages ADD COLUMN words bytea;

-- +goose Down
ALTER TABLE pages DROP COLUMN words;
