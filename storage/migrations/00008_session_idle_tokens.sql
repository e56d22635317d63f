-- +goose Up
-- Sessions end after a period without activity (HIPAA automatic logoff), not only after
-- their fixed length; API tokens expire and can be revoked (issue 10).
ALTER TABLE sessions ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();

-- Tokens made before this had no end: they get the default term from now.
ALTER TABLE api_tokens
    ADD COLUMN id bigserial UNIQUE,
    ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '90 days',
    ADD COLUMN revoked_at timestamptz;
ALTER TABLE api_tokens ALTER COLUMN expires_at DROP DEFAULT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- +goose Down
DROP INDEX api_tokens_user;
ALTER TABLE api_tokens DROP COLUMN revoked_at, DROP COLUMN expires_at, DROP COLUMN id;
ALTER TABLE sessions DROP COLUMN last_seen_at;
