/**
 * Calls any procedure by its path over plain HTTP (the way tRPC's httpLink does), and returns the
 * outcome as data rather than throwing: the tRPC error code, the HTTP status and the message.
 * Tests that enumerate the router (roles matrix, bad input) need this untyped form.
 */
import superjson from 'superjson';
import { appRouter } from '../../server/trpc/router.js';
import type { Permission } from '../../shared/permissions.js';

export type Outcome =
  | { ok: true; status: number; data: unknown }
  | { ok: false; status: number; code: string | undefined; message: string; data: Record<string, unknown> | undefined };

export interface Caller {
  /** Session cookie header ("session=..."), as a browser sends it. */
  cookie?: string;
  /** Personal API token, as a program sends it. */
  token?: string;
  /** The Origin the request claims (default: the server's own, i.e. same-origin). null: none. */
  origin?: string | null;
  headers?: Record<string, string>;
}

export async function call(baseUrl: string, type: 'query' | 'mutation', path: string, input: unknown, as: Caller = {}): Promise<Outcome> {
  const headers: Record<string, string> = { ...as.headers };
  if (as.cookie) headers.cookie = as.cookie;
  if (as.token) headers.authorization = `Bearer ${as.token}`;
  const origin = as.origin === undefined ? baseUrl : as.origin;
  if (origin) headers.origin = origin;
  let res: Response;
  if (type === 'query') {
    const qs = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`;
    res = await fetch(`${baseUrl}/trpc/${path}${qs}`, { headers });
  } else {
    headers['content-type'] = 'application/json';
    res = await fetch(`${baseUrl}/trpc/${path}`, {
      method: 'POST',
      headers,
      body: input === undefined ? undefined : JSON.stringify(superjson.serialize(input)),
    });
  }
  const text = await res.text();
  let body: { result?: { data?: unknown }; error?: unknown } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.ok && body?.result) {
    return { ok: true, status: res.status, data: superjson.deserialize(body.result.data as never) };
  }
  const error = body?.error ? (superjson.deserialize(body.error as never) as { message?: string; data?: Record<string, unknown> }) : undefined;
  return {
    ok: false,
    status: res.status,
    code: error?.data?.code as string | undefined,
    message: error?.message ?? text.slice(0, 500),
    data: error?.data,
  };
}

/**
 * Many calls of one procedure in one HTTP request, as tRPC's httpBatchLink sends them (GET for
 * queries, POST for mutations); each call is still validated and authorised on its own. Returns
 * one Outcome per input, `status` being that call's own HTTP status.
 */
export async function callBatch(baseUrl: string, type: 'query' | 'mutation', path: string, inputs: unknown[], as: Caller = {}): Promise<Outcome[]> {
  const headers: Record<string, string> = { ...as.headers };
  if (as.cookie) headers.cookie = as.cookie;
  if (as.token) headers.authorization = `Bearer ${as.token}`;
  const origin = as.origin === undefined ? baseUrl : as.origin;
  if (origin) headers.origin = origin;
  const payload = JSON.stringify(Object.fromEntries(inputs.map((input, i) => [i, input === undefined ? {} : superjson.serialize(input)])));
  const url = `${baseUrl}/trpc/${inputs.map(() => path).join(',')}?batch=1`;
  const res =
    type === 'query'
      ? await fetch(`${url}&input=${encodeURIComponent(payload)}`, { headers })
      : await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: payload });
  const text = await res.text();
  let items: { result?: { data?: unknown }; error?: unknown }[] | undefined;
  try {
    items = JSON.parse(text);
  } catch {
    items = undefined;
  }
  if (!Array.isArray(items)) {
    // Refused as a whole below tRPC (e.g. 431 for an over-long URL): every call got that answer.
    return inputs.map(() => ({ ok: false, status: res.status, code: undefined, message: text.slice(0, 500), data: undefined }));
  }
  return items.map((item) => {
    if (item.result) return { ok: true, status: 200, data: superjson.deserialize(item.result.data as never) };
    const error = superjson.deserialize(item.error as never) as { message?: string; data?: Record<string, unknown> };
    return { ok: false, status: Number(error.data?.httpStatus ?? res.status), code: error.data?.code as string | undefined, message: error.message ?? '', data: error.data };
  });
}

/**
 * Opens a subscription over HTTP (tRPC's server-sent events) and reports how it starts: an error
 * event becomes a failed Outcome with its code; a stream that stays open for `openForMs` is ok.
 */
export async function subscribeOverHttp(baseUrl: string, path: string, input: unknown, as: Caller = {}, openForMs = 1_500): Promise<Outcome> {
  const headers: Record<string, string> = { ...as.headers };
  if (as.cookie) headers.cookie = as.cookie;
  if (as.token) headers.authorization = `Bearer ${as.token}`;
  const qs = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), openForMs);
  let status = 0;
  let text = '';
  try {
    const res = await fetch(`${baseUrl}/trpc/${path}${qs}`, { headers, signal: abort.signal });
    status = res.status;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (/event: serialized-error\ndata: .*\n\n/.test(text)) break;
    }
    await reader.cancel().catch(() => {});
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  if (status !== 200) {
    try {
      const body = JSON.parse(text) as { error?: unknown };
      const error = superjson.deserialize(body.error as never) as { message?: string; data?: Record<string, unknown> };
      return { ok: false, status, code: error.data?.code as string | undefined, message: error.message ?? '', data: error.data };
    } catch {
      return { ok: false, status, code: undefined, message: text.slice(0, 500), data: undefined };
    }
  }
  const m = /event: serialized-error\ndata: (.*)\n/.exec(text);
  if (m) {
    const error = superjson.deserialize(JSON.parse(m[1]!)) as { message?: string; data?: Record<string, unknown> };
    const code = error.data?.code as string | undefined;
    return { ok: false, status: Number(error.data?.httpStatus ?? 0), code, message: error.message ?? '', data: error.data };
  }
  return { ok: true, status, data: text };
}

export interface ProcedureInfo {
  path: string;
  type: 'query' | 'mutation' | 'subscription';
  permission: Permission | undefined;
  /** The zod input schema, if the procedure takes input. */
  input: { safeParse(v: unknown): { success: boolean }; shape?: Record<string, { safeParse(v: unknown): { success: boolean } }> } | undefined;
  inputKeys: string[];
}

/** Every procedure of the app router, flattened by path. */
export function listProcedures(): ProcedureInfo[] {
  const procedures = (appRouter as unknown as { _def: { procedures: Record<string, { _def: Record<string, unknown> }> } })._def.procedures;
  return Object.entries(procedures).map(([path, proc]) => {
    const def = proc._def as { type: ProcedureInfo['type']; meta?: { permission?: Permission }; inputs?: unknown[] };
    const input = def.inputs?.[0] as ProcedureInfo['input'];
    return { path, type: def.type, permission: def.meta?.permission, input, inputKeys: input?.shape ? Object.keys(input.shape) : [] };
  });
}
