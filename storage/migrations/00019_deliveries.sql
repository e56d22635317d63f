-- +goose Up
-- Delivery to the EHR (issue 14, item 5): the document:deliver stage sends each ready
-- patient document version to the configured targets (FHIR, HL7 MDM over MLLP), and
-- withdraws from them a superseded version no other version replaces.
--
-- round: a clerk's retry of a rejected version starts a new round (the stage's task id
-- names it, so a retried version gets a task of its own). attempts, waiting: the
-- attempts of this round, and why the last one did not get through (the EHR was down),
-- without PHI. retired_at: of a superseded version the EHR held, when the EHR was told
-- (its replacement's delivery marked it superseded or entered-in-error, or a cancel
-- withdrew it).
ALTER TABLE patient_documents
    ADD COLUMN round int NOT NULL DEFAULT 0,
    ADD COLUMN attempts int NOT NULL DEFAULT 0,
    ADD COLUMN waiting text NOT NULL DEFAULT '',
    ADD COLUMN last_attempt_at timestamptz,
    ADD COLUMN retired_at timestamptz;
-- The withdrawals still to send: superseded, withdrawn, once in the EHR, not yet told.
CREATE INDEX patient_documents_withdraw_due ON patient_documents (id, version)
    WHERE state = 'superseded' AND withdraw AND retired_at IS NULL AND delivered_at IS NOT NULL;

-- What each target did with each version: one row per version, target (fhir, hl7) and
-- kind (send: the version itself; cancel: an HL7 T11 or FHIR status change withdrawing
-- it). A target that took a version is not sent it again, even when another target
-- rejected it and a clerk retries.
CREATE TABLE patient_document_deliveries (
    id         uuid NOT NULL,
    version    int NOT NULL,
    target     text NOT NULL CHECK (target IN ('fhir', 'hl7')),
    kind       text NOT NULL CHECK (kind IN ('send', 'cancel')),
    -- accepted: the target took it (FHIR 2xx, HL7 CA); acknowledged: and applied it
    -- (HL7 AA; a FHIR transaction answered 2xx entry by entry); rejected: refused.
    state      text NOT NULL CHECK (state IN ('accepted', 'acknowledged', 'rejected')),
    ack_code   text NOT NULL DEFAULT '',  -- HL7 MSA-1, or the FHIR HTTP status
    control_id text NOT NULL DEFAULT '',  -- HL7 MSH-10 sent
    reason     text NOT NULL DEFAULT '',  -- the receiver's reason for a rejection
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, version, target, kind),
    FOREIGN KEY (id, version) REFERENCES patient_documents (id, version) ON DELETE CASCADE
);

-- Delivery events, for the audit log. Workers deliver and hold no audit key, so they
-- cannot sign audit entries: they write each send, acknowledgement, rejection and retry
-- here, in the transaction that records it, and a process that holds the key (serve,
-- the CLI) appends them to the audit log in order and marks them audited. Workers may
-- only read and insert rows (storage/roles.go).
CREATE TABLE delivery_events (
    seq        bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    doc_id     uuid NOT NULL,
    version    int NOT NULL,
    action     text NOT NULL,          -- deliver.send, deliver.cancel, deliver.retry, …
    outcome    text NOT NULL,          -- ok, rejected, failed
    detail     jsonb NOT NULL DEFAULT '{}',
    audited_at timestamptz
);
CREATE INDEX delivery_events_unaudited ON delivery_events (seq) WHERE audited_at IS NULL;

-- +goose Down
DROP TABLE delivery_events, patient_document_deliveries;
DROP INDEX patient_documents_withdraw_due;
ALTER TABLE patient_documents DROP COLUMN round, DROP COLUMN attempts, DROP COLUMN waiting,
    DROP COLUMN last_attempt_at, DROP COLUMN retired_at;
