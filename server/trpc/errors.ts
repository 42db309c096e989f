/**
 * Domain errors (server/errors.ts) at the tRPC edge: one table from kind to tRPC code. Routers may
 * keep importing the constructors from here; services import them from server/errors.ts.
 */
import { TRPCError, type TRPC_ERROR_CODE_KEY } from '@trpc/server';
import { DomainError, type DomainErrorKind } from '../errors.js';

export { badRequest, conflict, forbidden, notFound, precondition, DomainError } from '../errors.js';

const CODES: Record<DomainErrorKind, TRPC_ERROR_CODE_KEY> = {
  not_found: 'NOT_FOUND',
  forbidden: 'FORBIDDEN',
  conflict: 'CONFLICT',
  precondition: 'PRECONDITION_FAILED',
  invalid: 'BAD_REQUEST',
  unauthorized: 'UNAUTHORIZED',
  too_many_requests: 'TOO_MANY_REQUESTS',
};

export function trpcCodeOf(err: DomainError): TRPC_ERROR_CODE_KEY {
  return CODES[err.kind];
}

/** The TRPCError a domain error is answered with (same code and message; the error stays the cause). */
export function toTRPCError(err: DomainError): TRPCError {
  return new TRPCError({ code: trpcCodeOf(err), message: err.message, cause: err });
}
