-- +goose Up
-- Identifier systems (issue 12, item 4). A patient's MRN keeps the system or assigning
-- authority that issued it ('' when the source named none): the same number from
-- another facility is another patient, refused as a conflict, never merged into this one.
-- A patient's other identifiers (another facility's MRN, a national or payer id) are kept
-- by system; the candidate search finds a patient by them too.
ALTER TABLE patients ADD COLUMN mrn_system text NOT NULL DEFAULT '';

CREATE TABLE patient_identifiers (
    system text NOT NULL,
    value  text NOT NULL,
    mrn    text NOT NULL REFERENCES patients(mrn) ON DELETE CASCADE,
    PRIMARY KEY (system, value)
);
CREATE INDEX patient_identifiers_value ON patient_identifiers (value);
CREATE INDEX patient_identifiers_mrn ON patient_identifiers (mrn);

-- +goose Down
DROP TABLE patient_identifiers;
ALTER TABLE patients DROP COLUMN mrn_system;
