// What the harness reads from a server process around a measurement: its CPU
// time and its memory. Every server variant answers GET /cpu and GET /mem.

/** `process.cpuUsage()`: user and system µs since the process started. */
export function cpuProbe () {
  return process.cpuUsage()
}

/** `process.memoryUsage()`, after two full collections when `collect` (needs --expose-gc). */
export function memProbe (collect) {
  if (collect && globalThis.gc !== undefined) {
    globalThis.gc()
    globalThis.gc()
  }
  return process.memoryUsage()
}
