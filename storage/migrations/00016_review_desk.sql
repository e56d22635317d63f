-- +goose Up
-- The reviewer's desk (issue 13). A decision keeps the page as it stood before it (status,
-- MRN, score, reason, when it was filed, its ranked candidates) and the version it left
-- the page at, so its reviewer can undo it for a while: the undo is a review row of its
-- own that names the decision it undid, and a decision is undone at most once. Older
-- decisions have no "before" and cannot be undone.
ALTER TABLE reviews ADD COLUMN before jsonb;
ALTER TABLE reviews ADD COLUMN version int;
ALTER TABLE reviews ADD COLUMN undoes bigint REFERENCES reviews(id);
CREATE UNIQUE INDEX reviews_undone ON reviews (undoes) WHERE undoes IS NOT NULL;

-- The items a reviewer skipped, per session (queue: review or qa); they end with it.
CREATE TABLE review_skips (
    session_hash text NOT NULL REFERENCES sessions(token_hash) ON DELETE CASCADE,
    queue        text NOT NULL CHECK (queue IN ('review', 'qa')),
    document_id  uuid NOT NULL,
    page_no      int NOT NULL,
    skipped_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_hash, queue, document_id, page_no)
);

-- +goose Down
DROP TABLE review_skips;
DROP INDEX reviews_undone;
ALTER TABLE reviews DROP COLUMN undoes, DROP COLUMN version, DROP COLUMN before;
