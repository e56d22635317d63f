-- +goose Up
-- The EMPI's size, kept beside the surname counts so a surname's share costs one index
-- look-up, not a sum over every surname (2–3 ms a page at a million patients).
CREATE TABLE empi_stats (
    key   text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO empi_stats (key, value) SELECT 'surnames_total', coalesce(sum(n), 0) FROM surname_counts;

-- +goose Down
DROP TABLE empi_stats;
