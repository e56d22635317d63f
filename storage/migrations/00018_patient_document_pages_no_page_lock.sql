-- +goose Up
-- 00015 first shipped with a foreign key from patient_document_pages to pages; inserting
-- a row took a key-share lock on its page, and a decision on one page deadlocked with a
-- filing holding the document's other pages. 00015 no longer creates it; a database that
-- ran the first version loses it here.
ALTER TABLE patient_document_pages DROP CONSTRAINT IF EXISTS patient_document_pages_document_id_page_no_fkey;

-- +goose Down
-- Nothing: the key is not wanted back.
SELECT 1;
