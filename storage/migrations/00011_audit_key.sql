-- +goose Up
-- The audit chain is keyed (issue 10, item 7): each entry's hash is the HMAC-SHA256 of
-- its content under CHARTSCAN_AUDIT_KEY, which serve and the CLI hold and workers do not,
-- and key_id names the key (a hash of it, never the key). Entries written before are
-- kept as they were, key_id '' (plain SHA-256), and verified as such: the first keyed
-- entry covers the last of them, and an unkeyed entry after a keyed one is a break.
ALTER TABLE audit_log ADD COLUMN key_id text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_log DROP COLUMN key_id;
