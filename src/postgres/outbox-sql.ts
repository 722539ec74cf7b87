import { InvalidOptionError } from '../errors.js'

// A table name is written into SQL text (DDL takes no parameters), so only
// plain identifiers pass: lower case, digits and underscores, with an
// optional schema.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,50}(\.[a-z_][a-z0-9_]{0,50})?$/

/** The SQL of one outbox table: every statement the outbox and its relays run. */
export interface OutboxSql {
  readonly table: string
  /** The LISTEN/NOTIFY channel a commit of new rows wakes. */
  readonly channel: string
  readonly migrate: string
  readonly insert: string
  readonly claim: string
  readonly lockTopics: string
  readonly claimOrdered: string
  readonly markSent: string
  readonly markFailed: string
  readonly deleteSent: string
  readonly dead: string
  readonly retry: string
  readonly notify: string
}

/** Checks `table` and builds its statements. */
export function outboxSql (table: string): OutboxSql {
  if (typeof table !== 'string' || !IDENTIFIER.test(table)) {
    throw new InvalidOptionError('table', 'must be a lower-case SQL identifier, optionally schema-qualified (e.g. "cqrs_outbox" or "app.cqrs_outbox")')
  }
  const base = table.slice(table.indexOf('.') + 1)
  const channel = table.replace('.', '_')
  const lockKey = `hashtext('fastify-cqrs-stream:${table}')`
  return {
    table,
    channel,
    migrate: `BEGIN;
-- Two instances migrating at once wait for each other.
SELECT pg_advisory_xact_lock(${lockKey});
CREATE TABLE IF NOT EXISTS ${table} (
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
ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS headers jsonb;
CREATE INDEX IF NOT EXISTS ${base}_pending ON ${table} (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${base}_topic_pending ON ${table} (topic, id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS ${base}_sent ON ${table} (sent_at) WHERE status = 'sent';
-- A commit that inserted rows wakes the relays (NOTIFY is sent on commit, once per transaction).
CREATE OR REPLACE FUNCTION ${table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('${channel}', '');
  RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS ${base}_notify ON ${table};
CREATE TRIGGER ${base}_notify AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_notify();
COMMIT;
`,
    // One statement for any number of events; an event added twice (a retried transaction) is kept once.
    insert: `INSERT INTO ${table} (event_id, topic, name, payload, headers)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
ON CONFLICT (event_id) DO NOTHING`,
    // Rows another relay holds are skipped, not waited for: relays share the work.
    // (ORDER BY o.id: the bigint, not the text column of the same name.)
    claim: `SELECT o.id::text, event_id, topic, name, payload, headers, attempts FROM ${table} o
WHERE status = 'pending' AND next_attempt_at <= now()
ORDER BY o.id LIMIT $1 FOR UPDATE SKIP LOCKED`,
    // In order per topic, in two statements of one transaction: first the
    // topics with rows due, each locked (transaction-scoped advisory lock)
    // unless another relay holds it; then, in a snapshot taken after those
    // locks (so a relay that held one has committed its marks), the rows of
    // the locked topics, none while an earlier row of its topic waits for
    // its retry.
    lockTopics: `SELECT topic FROM (SELECT DISTINCT topic FROM ${table} WHERE status = 'pending' AND next_attempt_at <= now()) due
WHERE pg_try_advisory_xact_lock(${lockKey}, hashtext(topic))`,
    claimOrdered: `SELECT o.id::text, event_id, topic, name, payload, headers, attempts FROM ${table} o
WHERE status = 'pending' AND next_attempt_at <= now() AND topic = ANY($2::text[])
  AND NOT EXISTS (SELECT 1 FROM ${table} e WHERE e.topic = o.topic AND e.status = 'pending' AND e.id < o.id AND e.next_attempt_at > now())
ORDER BY o.id LIMIT $1 FOR UPDATE SKIP LOCKED`,
    markSent: `UPDATE ${table} SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1::bigint[])`,
    // $1 ids, $2 errors, $3 retry delays (ms), $4 maxAttempts. Returns the rows that died.
    markFailed: `UPDATE ${table} AS o SET attempts = o.attempts + 1, last_error = f.error,
  status = CASE WHEN o.attempts + 1 >= $4 THEN 'dead' ELSE 'pending' END,
  next_attempt_at = now() + f.delay_ms * interval '1 millisecond'
FROM unnest($1::bigint[], $2::text[], $3::double precision[]) AS f (id, error, delay_ms)
WHERE o.id = f.id
RETURNING o.id::text, o.event_id, o.topic, o.attempts, o.status`,
    deleteSent: `DELETE FROM ${table} WHERE id IN (
  SELECT id FROM ${table} WHERE status = 'sent' AND sent_at < now() - $1 * interval '1 millisecond' LIMIT $2)`,
    dead: `SELECT o.id::text, event_id, topic, name, payload, headers, attempts, created_at, last_error FROM ${table} o
WHERE status = 'dead' ORDER BY o.id LIMIT $1`,
    retry: `UPDATE ${table} SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
WHERE id = $1 AND status = 'dead'`,
    notify: `SELECT pg_notify('${channel}', '')`,
  }
}
