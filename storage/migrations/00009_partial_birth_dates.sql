-- +goose Up
-- Incomplete EMPI records (issue 9). A record needs only its MRN: a missing family or
-- given name stays '' and a missing birth date NULL, as before. A birth date known only
-- to the year or the month ('1975', '1974-12') is kept in birth_partial, birth_date
-- staying NULL, and gives the birth year the blocking keys use. Existing rows keep
-- their values: birth_partial starts NULL everywhere.
ALTER TABLE patients
    ADD COLUMN birth_partial text
        CONSTRAINT patients_birth_partial
        CHECK (birth_partial IS NULL OR (birth_partial ~ '^[0-9]{4}(-(0[1-9]|1[0-2]))?$' AND birth_date IS NULL));
-- A generated column's expression cannot be altered before PostgreSQL 17: birth_year is
-- dropped (with its two indexes) and made again, computed anew for every row.
ALTER TABLE patients DROP COLUMN birth_year;
ALTER TABLE patients
    ADD COLUMN birth_year int GENERATED ALWAYS AS
        (coalesce(extract(year FROM birth_date)::int, left(birth_partial, 4)::int)) STORED;
CREATE INDEX patients_phonetic_year ON patients (family_key, birth_year);
CREATE INDEX patients_year_name_trgm ON patients USING gist (birth_year, full_name gist_trgm_ops);

-- +goose Down
ALTER TABLE patients DROP COLUMN birth_year;
ALTER TABLE patients DROP COLUMN birth_partial;
ALTER TABLE patients ADD COLUMN birth_year int GENERATED ALWAYS AS (extract(year FROM birth_date)::int) STORED;
CREATE INDEX patients_phonetic_year ON patients (family_key, birth_year);
CREATE INDEX patients_year_name_trgm ON patients USING gist (birth_year, full_name gist_trgm_ops);
