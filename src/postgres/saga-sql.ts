import { InvalidOptionError } from '../errors.js'

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}(\.[a-z_][a-z0-9_]{0,40})?$/

/** The statements of one pair of saga tables (`<prefix>_executions`, `<prefix>_log`). */
export interface SagaSql {
  readonly executions: string
  readonly log: string
  readonly migrate: string
  readonly create: string
  readonly update: string
  readonly load: string
  readonly readLog: string
  readonly renew: string
  readonly claim: string
}

/** Checks `prefix` and builds its statements. */
export function sagaSql (prefix: string): SagaSql {
  if (typeof prefix !== 'string' || !IDENTIFIER.test(prefix)) {
    throw new InvalidOptionError('tablePrefix', 'must be a lower-case SQL identifier, optionally schema-qualified (e.g. "cqrs_saga")')
  }
  const executions = `${prefix}_executions`
  const log = `${prefix}_log`
  const base = prefix.slice(prefix.indexOf('.') + 1)
  const columns = 'id, saga, status, context, completed, results, compensated, error, version'
  return {
    executions,
    log,
    migrate: `BEGIN;
SELECT pg_advisory_xact_lock(hashtext('fastify-cqrs-stream:${prefix}'));
CREATE TABLE IF NOT EXISTS ${executions} (
  id text PRIMARY KEY,
  saga text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'compensating', 'completed', 'compensated', 'failed-compensation')),
  context jsonb NOT NULL,
  completed integer NOT NULL,
  results jsonb NOT NULL,
  compensated integer NOT NULL,
  error text,
  version integer NOT NULL,
  -- The instance running it, until when: a recovery takes it once the lease lapsed.
  lease_owner text,
  lease_until timestamptz,
  recoveries integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ${base}_executions_unfinished ON ${executions} (lease_until) WHERE status IN ('running', 'compensating');
CREATE TABLE IF NOT EXISTS ${log} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  saga_id text NOT NULL REFERENCES ${executions} (id) ON DELETE CASCADE,
  step text NOT NULL,
  status text NOT NULL,
  attempt integer NOT NULL,
  error text,
  at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${base}_log_saga ON ${log} (saga_id, id);
COMMIT;
`,
    // $10 lease owner, $11 lease ms; $12.. the log entry (or nulls: none).
    create: `WITH created AS (
  INSERT INTO ${executions} (${columns}, lease_owner, lease_until)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + $11 * interval '1 millisecond') RETURNING id)
INSERT INTO ${log} (saga_id, step, status, attempt, error, at)
SELECT id, $12, $13, $14, $15, $16 FROM created WHERE $12::text IS NOT NULL`,
    // Only the lease holder's save of the next version; the lease is renewed, and dropped at the end.
    update: `UPDATE ${executions} SET status = $2, context = $3, completed = $4, results = $5, compensated = $6, error = $7, version = $8,
  updated_at = now(),
  lease_until = CASE WHEN $2 IN ('running', 'compensating') THEN now() + $10 * interval '1 millisecond' ELSE NULL END,
  lease_owner = CASE WHEN $2 IN ('running', 'compensating') THEN lease_owner ELSE NULL END
WHERE id = $1 AND version = $8 - 1 AND lease_owner = $9`,
    load: `SELECT ${columns} FROM ${executions} WHERE id = $1`,
    readLog: `SELECT step, status, attempt, error, at FROM ${log} WHERE saga_id = $1 ORDER BY id`,
    renew: `UPDATE ${executions} SET lease_until = now() + $3 * interval '1 millisecond'
WHERE id = ANY($1::text[]) AND lease_owner = $2 AND status IN ('running', 'compensating')`,
    // Unfinished sagas whose lease lapsed, each taken by one recoverer (SKIP LOCKED).
    claim: `UPDATE ${executions} e SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond', recoveries = e.recoveries + 1
WHERE e.id IN (
  SELECT id FROM ${executions}
  WHERE status IN ('running', 'compensating') AND lease_until < now() AND recoveries < $4
  ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING ${columns.split(', ').map((c) => `e.${c}`).join(', ')}`,
  }
}
