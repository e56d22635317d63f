-- +goose Up
-- Patient documents (issue 14, item 1): what chartscan delivers to the EHR. The pages of
-- one scan, in one part of it (separator sheets part a scan), filed to one patient (auto
-- or confirmed) in an unbroken run, of one document type and date of service. They are
-- computed from the pages in the transaction that changes a filing (storage/patientdocs.go).
--
-- A document is one id through all its versions; a version that was delivered is never
-- changed: a change makes it superseded and adds the next version, which replaces it
-- (replaces_version). A version never delivered (pending, ready) is updated in place.
CREATE TABLE patient_documents (
    id               uuid NOT NULL,
    version          int NOT NULL CHECK (version >= 1),
    batch_id         uuid NOT NULL REFERENCES batches(id),   -- the batch that first uploaded the scan
    document_id      uuid NOT NULL REFERENCES documents(id), -- the scan
    part             int NOT NULL,                           -- 1-based, as the export's "part"
    mrn              text NOT NULL,
    doc_type         text NOT NULL DEFAULT '',               -- '' unknown
    date_of_service  date,
    -- pending: a page of the scan's part is still in review (or being read); ready: to be
    -- delivered; delivered, acknowledged: the EHR holds it; rejected: the EHR refused it
    -- (reason says why); superseded: a later version or a withdrawal took its place.
    state            text NOT NULL CHECK (state IN ('pending', 'ready', 'delivered', 'acknowledged', 'rejected', 'superseded')),
    reason           text NOT NULL DEFAULT '',
    -- The version this one replaces in the EHR: one that was delivered or acknowledged.
    replaces_version int CHECK (replaces_version IS NULL OR replaces_version < version),
    -- Of a superseded version: why, without PHI; entered_in_error, it was wrong (another
    -- patient's, or it held pages that were not this patient's), not just out of date;
    -- withdraw, no version replaces it (its pages left the patient) and the EHR's copy is
    -- to be withdrawn (FHIR entered-in-error or superseded, HL7 T11 cancel).
    superseded_reason text NOT NULL DEFAULT '',
    entered_in_error boolean NOT NULL DEFAULT false,
    withdraw         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    acknowledged_at  timestamptz,
    superseded_at    timestamptz,
    PRIMARY KEY (id, version)
);
-- One live version per document.
CREATE UNIQUE INDEX patient_documents_live ON patient_documents (id) WHERE state <> 'superseded';
CREATE INDEX patient_documents_document ON patient_documents (document_id);
CREATE INDEX patient_documents_state ON patient_documents (state) WHERE state IN ('pending', 'ready', 'rejected');
CREATE INDEX patient_documents_mrn ON patient_documents (mrn) WHERE state <> 'superseded';

-- The pages of each version, in page order. No foreign key to pages: inserting a row
-- would take a key-share lock on its page, and a reviewer's decision on page 5 that
-- writes the document of pages 1–4 would wait for a filing that holds pages 1–4 and
-- waits for page 5 — a deadlock. Pages are never deleted; the refresh writes only pages
-- it has just read.
CREATE TABLE patient_document_pages (
    id          uuid NOT NULL,
    version     int NOT NULL,
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    PRIMARY KEY (id, version, page_no),
    FOREIGN KEY (id, version) REFERENCES patient_documents (id, version) ON DELETE CASCADE
);
CREATE INDEX patient_document_pages_page ON patient_document_pages (document_id, page_no);

-- +goose Down
DROP TABLE patient_document_pages, patient_documents;
