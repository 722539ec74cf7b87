import type { Pool } from 'pg'

/**
 * Runs `sql` (a BEGIN … COMMIT script) on one connection of `pool`. A
 * failed statement leaves that connection in a failed transaction: it is
 * rolled back before the connection goes back to the pool.
 */
export async function runMigration (pool: Pool, sql: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query(sql)
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}
