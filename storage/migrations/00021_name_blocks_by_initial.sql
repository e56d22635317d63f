-- +goose Up
-- The trigram-similar-name block of candidate search (storage.Candidates) searched all
-- patients born in the page's birth year: about 10,000 names in a 10^6-patient EMPI, and
-- 75% of the search time (make bench-empi). It now searches the names of that year
-- sharing the page's family-name initial, and those sharing its given-name initial: a
-- misread name is still found while one of its two initials survives. The family-initial
-- index also serves names entered the wrong way round (queried with the given-name
-- initial).
CREATE INDEX patients_year_family_initial_trgm ON patients
    USING gist (birth_year, lower(left(family, 1)), full_name gist_trgm_ops);
CREATE INDEX patients_year_given_initial_trgm ON patients
    USING gist (birth_year, lower(left(given, 1)), full_name gist_trgm_ops);
DROP INDEX patients_year_name_trgm;

-- +goose Down
CREATE INDEX patients_year_name_trgm ON patients USING gist (birth_year, full_name gist_trgm_ops);
DROP INDEX patients_year_given_initial_trgm;
DROP INDEX patients_year_family_initial_trgm;
