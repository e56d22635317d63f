-- +goose Up
-- The web server (issue 4): users with roles, their sessions and API tokens, who owns a
-- batch, reviewer decisions with optimistic concurrency, and indexes for the review queue
-- and the audit log viewer.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('clerk', 'reviewer', 'admin')),
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a session or API token is stored: a leaked table opens no session.
CREATE TABLE sessions (
    token_hash text PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    token_hash   text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- NULL: uploaded by the CLI or a script without a user.
ALTER TABLE batches ADD COLUMN owner_id bigint REFERENCES users(id);
CREATE INDEX batches_owner ON batches (owner_id, created_at);

-- Bumped by every reviewer decision: a decision names the version it saw, so the second of
-- two reviewers deciding the same page changes nothing.
ALTER TABLE pages ADD COLUMN version int NOT NULL DEFAULT 0;
CREATE INDEX pages_review_queue ON pages (document_id, page_no) WHERE status = 'review';

CREATE TABLE reviews (
    id          bigserial PRIMARY KEY,
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    action      text NOT NULL,
    mrn         text,
    actor_id    bigint REFERENCES users(id),
    actor       text NOT NULL,
    fields      jsonb NOT NULL DEFAULT '{}',  -- the extracted fields as the reviewer corrected them
    decided_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (document_id, page_no) REFERENCES pages (document_id, page_no)
);
CREATE INDEX reviews_page ON reviews (document_id, page_no, id);

-- Where a reviewer said a new patient's pages begin inside a document.
CREATE TABLE page_splits (
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, page_no),
    FOREIGN KEY (document_id, page_no) REFERENCES pages (document_id, page_no)
);

CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_object ON audit_log (object, id);

-- +goose Down
DROP INDEX audit_log_actor, audit_log_object;
DROP TABLE page_splits, reviews;
DROP INDEX pages_review_queue;
ALTER TABLE pages DROP COLUMN version;
ALTER TABLE batches DROP COLUMN owner_id;
DROP TABLE api_tokens, sessions, users;
