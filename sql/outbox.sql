-- The outbox table of fastify-cqrs-stream/postgres (the default name, cqrs_outbox),
-- for teams that run their own migrations; outbox.migrate() runs the same.
BEGIN;
-- Two instances migrating at once wait for each other.
SELECT pg_advisory_xact_lock(hashtext('fastify-cqrs-stream:cqrs_outbox'));
CREATE TABLE IF NOT EXISTS cqrs_outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The broker's messageId: the same on every re-send.
  event_id text NOT NULL UNIQUE,
  topic text NOT NULL,
  name text NOT NULL,
  payload jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  last_error text,
  -- The message's transport headers (the trace context of its publish span).
  headers jsonb
);
-- Tables made before headers were kept.
ALTER TABLE cqrs_outbox ADD COLUMN IF NOT EXISTS headers jsonb;
CREATE INDEX IF NOT EXISTS cqrs_outbox_pending ON cqrs_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS cqrs_outbox_topic_pending ON cqrs_outbox (topic, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS cqrs_outbox_sent ON cqrs_outbox (sent_at) WHERE status = 'sent';
-- A commit that inserted rows wakes the relays (NOTIFY is sent on commit, once per transaction).
CREATE OR REPLACE FUNCTION cqrs_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cqrs_outbox', '');
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS cqrs_outbox_notify ON cqrs_outbox;
CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON cqrs_outbox FOR EACH STATEMENT EXECUTE FUNCTION cqrs_outbox_notify();
COMMIT;
