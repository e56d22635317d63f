-- +goose Up
-- How often reading a page killed the reader's process (issue 10, item 3): a SIGSEGV or
-- abort in Leptonica, Tesseract or zxing, or a read past its time limit. The worker gives
-- up on a page after its second crash, so a poison page costs two reader restarts, not
-- every worker in turn; a re-run of failed pages starts the count again.
ALTER TABLE pages ADD COLUMN reader_crashes integer NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE pages DROP COLUMN reader_crashes;
