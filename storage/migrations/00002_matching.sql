-- +goose Up
-- Blocking keys for candidate search (issue 3): phonetic surname + birth year, trigram
-- similarity on the full name, MRN aliases left by merges; surname frequencies for the
-- term-frequency adjustment; the audit log.
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

ALTER TABLE patients
    ADD COLUMN family_key text GENERATED ALWAYS AS (dmetaphone(family)) STORED,
    ADD COLUMN birth_year int GENERATED ALWAYS AS (extract(year FROM birth_date)::int) STORED,
    ADD COLUMN full_name text GENERATED ALWAYS AS (lower(family || ' ' || given)) STORED;
CREATE INDEX patients_phonetic_year ON patients (family_key, birth_year);
CREATE INDEX patients_name_trgm ON patients USING gin (full_name gin_trgm_ops);

-- An MRN merged away (HL7 A40) resolves to the patient that survived.
CREATE TABLE patient_aliases (
    alias_mrn  text PRIMARY KEY,
    mrn        text NOT NULL REFERENCES patients(mrn),
    merged_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_aliases_mrn ON patient_aliases (mrn);

-- How many EMPI patients carry each surname, refreshed after every import.
CREATE TABLE surname_counts (
    family text PRIMARY KEY, -- lower(family)
    n      int NOT NULL
);

-- Append-only and tamper-evident: each entry carries the hash of the one before.
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    action    text NOT NULL,
    object    text NOT NULL,
    outcome   text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}',
    prev_hash text NOT NULL,
    hash      text NOT NULL
);

-- +goose Down
DROP TABLE audit_log, surname_counts, patient_aliases;
DROP INDEX patients_phonetic_year, patients_name_trgm;
ALTER TABLE patients DROP COLUMN family_key, DROP COLUMN birth_year, DROP COLUMN full_name;
