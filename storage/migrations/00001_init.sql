-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE batches (
    id         uuid PRIMARY KEY,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per distinct content (SHA-256): the same scan uploaded twice is one document.
CREATE TABLE documents (
    id           uuid PRIMARY KEY,
    batch_id     uuid NOT NULL REFERENCES batches(id),
    sha256       text NOT NULL UNIQUE,
    file_name    text NOT NULL,
    content_type text NOT NULL DEFAULT '',
    size         bigint NOT NULL,
    page_count   int,
    status       text NOT NULL DEFAULT 'queued',
    reason       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_status ON documents (status) WHERE status IN ('queued', 'processing');

-- Every batch that uploaded a document, including repeats of the same content.
CREATE TABLE batch_documents (
    batch_id    uuid NOT NULL REFERENCES batches(id),
    document_id uuid NOT NULL REFERENCES documents(id),
    file_name   text NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, document_id)
);
CREATE INDEX batch_documents_document ON batch_documents (document_id);

CREATE TABLE pages (
    document_id     uuid NOT NULL REFERENCES documents(id),
    page_no         int NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    reason          text NOT NULL DEFAULT '',
    image_key       text NOT NULL,
    image_type      text NOT NULL,
    width           int NOT NULL,
    height          int NOT NULL,
    dpi             int NOT NULL,
    rotation        int,
    ocr_confidence  real,
    text            text,
    tsv             tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(text, ''))) STORED,
    words_key       text,
    ocr_at          timestamptz,
    extracted_at    timestamptz,
    mrn             text,
    score           double precision,
    doc_type        text,
    date_of_service date,
    filed_at        timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (document_id, page_no)
);
CREATE INDEX pages_tsv ON pages USING gin (tsv);
CREATE INDEX pages_status ON pages (status);
CREATE INDEX pages_mrn ON pages (mrn) WHERE mrn IS NOT NULL;

CREATE TABLE page_identifiers (
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    kind        text NOT NULL,
    value       text NOT NULL,
    raw         text NOT NULL,
    confidence  real NOT NULL,
    x0 int NOT NULL, y0 int NOT NULL, x1 int NOT NULL, y1 int NOT NULL,
    PRIMARY KEY (document_id, page_no, kind),
    FOREIGN KEY (document_id, page_no) REFERENCES pages (document_id, page_no)
);

-- The ranked candidates of a page's filing, with the evidence of each.
CREATE TABLE page_candidates (
    document_id uuid NOT NULL,
    page_no     int NOT NULL,
    rank        int NOT NULL,
    mrn         text NOT NULL,
    score       double precision NOT NULL,
    evidence    jsonb NOT NULL,
    PRIMARY KEY (document_id, page_no, rank),
    FOREIGN KEY (document_id, page_no) REFERENCES pages (document_id, page_no)
);

CREATE TABLE patients (
    mrn        text PRIMARY KEY,
    family     text NOT NULL,
    given      text NOT NULL,
    birth_date date,          -- NULL: unknown (e.g. an unidentified patient record)
    sex        text NOT NULL DEFAULT 'unknown',
    street     text NOT NULL DEFAULT '',
    city       text NOT NULL DEFAULT '',
    postcode   text NOT NULL DEFAULT '',
    state      text NOT NULL DEFAULT '',
    phone      text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_birth_date ON patients (birth_date);
CREATE INDEX patients_family ON patients (lower(family));

-- +goose Down
DROP TABLE page_candidates, page_identifiers, pages, batch_documents, documents, batches, patients;
