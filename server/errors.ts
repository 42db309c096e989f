/**
 * Domain errors: what services throw when a rule refuses a request. They know nothing of the
 * transport; each edge maps them once (tRPC: server/trpc/errors.ts, used by server/trpc/init.ts;
 * the gateway's OpenAI error shape: server/modules/gateway/errors.ts).
 */
export type DomainErrorKind = 'not_found' | 'forbidden' | 'conflict' | 'precondition' | 'invalid' | 'unauthorized' | 'too_many_requests';

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    /** For a conflict: the resource's current state, so the client can show what changed. */
    readonly current?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const notFound = (what = 'resource') => new DomainError('not_found', `${what} not found`);
export const forbidden = (message: string) => new DomainError('forbidden', message);
/** `current`: the resource as it is now (sent to the client as `data.current`); an Error is kept as the cause. */
export const conflict = (message: string, current?: unknown) =>
  current instanceof Error ? new DomainError('conflict', message, undefined, { cause: current }) : new DomainError('conflict', message, current ?? undefined);
export const precondition = (message: string) => new DomainError('precondition', message);
export const badRequest = (message: string) => new DomainError('invalid', message);
export const unauthorized = (message: string) => new DomainError('unauthorized', message);
export const tooManyRequests = (message: string) => new DomainError('too_many_requests', message);
