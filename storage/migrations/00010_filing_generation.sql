-- +goose Up
-- A document's filing generation (issue 10, item 1). Filing is a compare-and-set on the
-- document: a filing reads the generation before the pages, and saves only if it is
-- still the same in the transaction that saves, so a filing computed before a reviewer's
-- decision changes nothing after it and is computed again. Every human decision bumps
-- the version of a page it decides (a review decision, a split, a quality check that
-- finds a misfile, a re-run of failed pages); this trigger carries each bump to the
-- document in the same transaction, so no decision, today's or a later one, can forget.
ALTER TABLE documents ADD COLUMN filing_generation bigint NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION bump_filing_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE documents SET filing_generation = filing_generation + 1 WHERE id = NEW.document_id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER pages_version_bumps_filing_generation
    AFTER UPDATE OF version ON pages
    FOR EACH ROW WHEN (NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION bump_filing_generation();

-- +goose Down
DROP TRIGGER pages_version_bumps_filing_generation ON pages;
DROP FUNCTION bump_filing_generation();
ALTER TABLE documents DROP COLUMN filing_generation;
