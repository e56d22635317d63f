-- +goose Up
-- Quality checks of automatic filing: a share of the pages filed without a reviewer is
-- drawn when they are filed, and a reviewer checks each against the page image. The
-- outcomes measure the misfile rate the review queue cannot see.
CREATE TABLE qa_checks (
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    mrn         text NOT NULL,            -- the patient the page was filed to when drawn
    sampled_at  timestamptz NOT NULL DEFAULT now(),
    outcome     text CHECK (outcome IN ('correct', 'wrong')),
    actor       text,
    decided_at  timestamptz,
    PRIMARY KEY (document_id, page_no),
    FOREIGN KEY (document_id, page_no) REFERENCES pages (document_id, page_no)
);
CREATE INDEX qa_checks_open ON qa_checks (sampled_at, document_id, page_no) WHERE outcome IS NULL;

-- +goose Down
DROP TABLE qa_checks;
