-- +goose Up
-- What OCR made of a page besides its words (issue 5): the upright image it read (the
-- original stays at original_key), orientation and skew, read quality, barcodes, and
-- whether the page is a cover or separator sheet.
ALTER TABLE pages
    ADD COLUMN original_key        text,
    ADD COLUMN rotation_confidence real,
    ADD COLUMN skew                real,
    ADD COLUMN quality             real,
    ADD COLUMN low_confidence      real,
    ADD COLUMN little_text         boolean NOT NULL DEFAULT false,
    ADD COLUMN barcodes            jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN cover_mrn           text,
    ADD COLUMN separator           boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE pages DROP COLUMN original_key, DROP COLUMN rotation_confidence, DROP COLUMN skew,
    DROP COLUMN quality, DROP COLUMN low_confidence, DROP COLUMN little_text, DROP COLUMN barcodes,
    DROP COLUMN cover_mrn, DROP COLUMN separator;
