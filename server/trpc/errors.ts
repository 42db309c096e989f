import { TRPCError } from '@trpc/server';

export const notFound = (what = 'resource') => new TRPCError({ code: 'NOT_FOUND', message: `${what} not found` });
export const forbidden = (message: string) => new TRPCError({ code: 'FORBIDDEN', message });
export const conflict = (message: string, cause?: unknown) => new TRPCError({ code: 'CONFLICT', message, cause: cause instanceof Error ? cause : cause ? new ConflictDetails(cause) : undefined });
export const precondition = (message: string) => new TRPCError({ code: 'PRECONDITION_FAILED', message });
export const badRequest = (message: string) => new TRPCError({ code: 'BAD_REQUEST', message });

/** Carries the current state of a resource with a CONFLICT, so the client can show what changed. */
export class ConflictDetails extends Error {
  constructor(readonly current: unknown) {
    super('conflict');
  }
}
