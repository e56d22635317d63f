-- +goose Up
-- HL7 v2 messages applied to the EMPI (issue 12). An interface engine sends a message
-- again when it got no acknowledgement; one already applied (the same sender, control id
-- and content) is acknowledged again without being applied twice. A message with the
-- same control id and other content is applied, and replaces the row.
CREATE TABLE hl7_messages (
    sender     text NOT NULL,  -- MSH-3^MSH-4 as sent
    control_id text NOT NULL,  -- MSH-10
    digest     bytea NOT NULL, -- SHA-256 of the message without MSH-7
    event      text NOT NULL,  -- A04, A40, …
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sender, control_id)
);

-- +goose Down
DROP TABLE hl7_messages;
