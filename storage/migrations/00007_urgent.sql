-- +goose Up
-- An urgent batch (a patient is waiting for the chart) goes to the front of the review queue.
ALTER TABLE batches ADD COLUMN urgent boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE batches DROP COLUMN urgent;
