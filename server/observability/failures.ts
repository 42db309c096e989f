/**
 * The one place a failure that is caught and not rethrown goes: on a money, event or after-commit
 * path such a failure must never disappear. It is logged with what failed and for which
 * organization, and counted (`gateway_caught_failures_total{what}`), so an operator can alert on it.
 */
import { Counter, Registry } from 'prom-client';

/** The process's metrics registry (`GET /metrics` serves it). */
export const metricsRegistry = new Registry();

const caughtFailures = new Counter({
  name: 'gateway_caught_failures_total',
  help: 'Failures caught on money, event and after-commit paths (each is also logged at error level)',
  labelNames: ['what'] as const,
  registers: [metricsRegistry],
});

export interface FailureLog {
  error(obj: unknown, msg?: string): void;
}

export interface FailureContext {
  orgId?: string | null;
  [key: string]: unknown;
}

/** Logs and counts a caught failure. `what` is a short stable name ("auto top-up trigger"). */
export function reportFailure(log: FailureLog, what: string, err: unknown, context: FailureContext = {}): void {
  caughtFailures.inc({ what });
  try {
    log.error({ err, ...context }, `${what} failed`);
  } catch {
    // A logger that throws must not turn a reported failure into a crash; the counter has it.
  }
}

/** `promise.catch(failureHandler(...))`: the same, for a promise nobody awaits. */
export function failureHandler(log: FailureLog, what: string, context: FailureContext = {}): (err: unknown) => void {
  return (err) => reportFailure(log, what, err, context);
}

/** How many failures of one kind were caught (tests read it). */
export async function caughtFailureCount(what: string): Promise<number> {
  const metric = await caughtFailures.get();
  return metric.values.find((v) => v.labels.what === what)?.value ?? 0;
}
