-- +goose Up
-- Batches filled by the scanners rather than a user (issue 15): source says from where —
-- 'intake' (the scanners' bucket, `chartscan intake`) or 'folder' (`chartscan watch`);
-- '' is an upload (web or `chartscan ingest`). Such a batch is named by its prefix or
-- subfolder and stays open for it until closed_at; at most one is open per source and label.
ALTER TABLE batches ADD COLUMN source text NOT NULL DEFAULT '';
ALTER TABLE batches ADD COLUMN closed_at timestamptz;
CREATE UNIQUE INDEX batches_open_intake ON batches (source, label) WHERE source <> '' AND closed_at IS NULL;

-- +goose Down
DROP INDEX batches_open_intake;
ALTER TABLE batches DROP COLUMN closed_at, DROP COLUMN source;
