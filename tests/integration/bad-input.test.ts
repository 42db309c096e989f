/**
 * Bad input on every procedure of appRouter: no input, empty objects, missing fields, 100k-character
 * strings, wrong types, NUL bytes, unknown but well-formed ids, malformed ids. Each must answer a
 * clear 4xx (never a 500, never a stack trace) and leave every table exactly as it was.
 */
import { randomUUID } from 'node:crypto';
import superjson from 'superjson';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { call, callBatch, listProcedures, subscribeOverHttp, type Outcome, type ProcedureInfo } from '../helpers/rpc.js';
import { settle, tableChecksums } from '../helpers/db-state.js';
import { buildWorld, ORG_FIXTURES, PERSONAL_PROCEDURES, type World } from '../helpers/world.js';

const procedures = listProcedures();
let app: TestApp;
let w: World;
/** A valid input per procedure, made up front (fixtures may create resources). */
const bases = new Map<string, Record<string, unknown>>();
/** Every table's checksum as it must stay: taken once the fixtures are made. */
let expected: Record<string, string>;

beforeAll(async () => {
  app = await startTestApp();
  w = await buildWorld(app);
  for (const proc of procedures) if (proc.input) bases.set(proc.path, await baseInput(w, proc));
  await settle(app);
  expected = await tableChecksums(app);
});
afterAll(async () => {
  await app?.close();
});

const HUGE = 'x'.repeat(100_000);
/**
 * Values of the wrong type or shape, by kind. Per field, the first value of each kind that the
 * field's schema rejects is sent (a string field gets one number, not three).
 */
const WRONG_VALUES: Record<string, unknown[]> = {
  number: [12345, -1.5, NaN],
  bigint: [10n],
  boolean: [true],
  null: [null],
  array: [['a']],
  object: [{}],
  empty: [''],
  numericText: ['10'],
  huge: [HUGE],
};
/** A string no schema may let through to PostgreSQL, which cannot store NUL in text. */
const NUL_STRING = `${'n'.repeat(30)}\u0000`;
const MALFORMED_IDS = ['not-a-uuid', `${randomUUID()} `, "' or '1'='1"];
/** Well-formed values that name nothing (or the wrong thing): the domain must refuse them. */
const PLAUSIBLE_BUT_WRONG: Record<string, unknown[]> = {
  version: [999_999],
  confirmName: ['Not the name', ''],
  code: ['000000'],
  token: ['A'.repeat(43), 'B'.repeat(200)],
  id: ['abcdefghij', 'x'.repeat(64)],
  // Numeric ids beyond PostgreSQL's bigint.
  cursor: ['9999999999999999999', 'in_test_unknown0000'],
  transactionId: ['9999999999999999999', '0'],
  // Spend limits' amounts: zero, negative, too precise, too large.
  amount: ['0', '-5', '1.1234567', '100000000'],
};
const TOP_LEVEL: unknown[] = [undefined, null, {}, [], 'text', 42];

function deeplyNested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { orgId: value };
  return value;
}

/** Keys that name a resource (lastEventId is a position in a stream, covered by the live tests). */
const isIdKey = (key: string) => /Id$/.test(key) && key !== 'lastEventId';
const CLEAR_CODES = ['BAD_REQUEST', 'PARSE_ERROR', 'NOT_FOUND', 'UNAUTHORIZED', 'FORBIDDEN', 'CONFLICT', 'PRECONDITION_FAILED', 'TOO_MANY_REQUESTS'];
/** Refusals from the HTTP layer before tRPC (a 100k-character query string does not fit in a URL). */
const HTTP_LAYER_STATUSES = [413, 414, 431];

/** An outcome, and whether its input was sent alone (not in a batch). */
type Sent = Outcome & { alone?: boolean };

interface Variant {
  label: string;
  input: unknown;
}

/** Rough size of an input on the wire, to keep batches within the server's limits. */
function wireSize(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + wireSize(v) + 1, 2);
  if (value && typeof value === 'object' && !(value instanceof Date)) return Object.entries(value).reduce((n, [k, v]) => n + k.length + wireSize(v) + 4, 2);
  return 24;
}

function variantsFor(proc: ProcedureInfo, base: Record<string, unknown>): Variant[] {
  const schema = proc.input!;
  const out: Variant[] = [];
  for (const input of TOP_LEVEL) if (!schema.safeParse(input).success) out.push({ label: `whole input ${show(input)}`, input });
  for (const key of proc.inputKeys) {
    const field = schema.shape![key]!;
    const without = { ...base };
    delete without[key];
    if (!field.safeParse(undefined).success) out.push({ label: `missing ${key}`, input: without });
    for (const values of Object.values(WRONG_VALUES)) {
      const value = values.find((v) => !field.safeParse(v).success);
      if (value !== undefined) out.push({ label: `${key} = ${show(value)}`, input: { ...base, [key]: value } });
    }
    out.push({ label: `${key} with a NUL byte`, input: { ...base, [key]: NUL_STRING } });
    if (isIdKey(key)) {
      out.push({ label: `${key} unknown`, input: { ...base, [key]: randomUUID() } });
      for (const value of MALFORMED_IDS) out.push({ label: `${key} malformed ${show(value)}`, input: { ...base, [key]: value } });
    }
    for (const value of PLAUSIBLE_BUT_WRONG[key] ?? []) out.push({ label: `${key} = ${show(value)} (plausible)`, input: { ...base, [key]: value } });
  }
  return out;
}

function show(value: unknown): string {
  if (typeof value === 'string') return value.length > 40 ? `"${value.slice(0, 10)}..." (${value.length} chars)` : JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return value.length > 5 ? `array(${value.length})` : JSON.stringify(value);
  if (value instanceof Date) return 'Date';
  if (value && typeof value === 'object') return JSON.stringify(value).length > 60 ? 'deep object' : JSON.stringify(value);
  return String(value);
}

async function baseInput(w: World, proc: ProcedureInfo): Promise<Record<string, unknown>> {
  const org = ORG_FIXTURES[proc.path];
  if (org) return (await org.input(w, 'owner')) as Record<string, unknown>;
  const personal = PERSONAL_PROCEDURES[proc.path];
  if (!personal) throw new Error(`no fixture for ${proc.path}: add it to tests/helpers/world.ts`);
  return (personal.input(w) ?? {}) as Record<string, unknown>;
}

/** Soft assertions: every refused variant is reported, and the database check still runs. */
function expectClearRefusal(proc: ProcedureInfo, v: Variant, o: Sent) {
  const where = `${proc.path} with ${v.label}: ${o.ok ? 'ok' : `${o.code} (${o.status}) ${o.message.slice(0, 200)}`}`;
  expect.soft(o.ok, where).toBe(false);
  if (o.ok) return;
  if (o.code === undefined) {
    // Only an input too large for a URL or a body may be refused below tRPC.
    expect.soft(o.alone, where).toBe(true);
    expect.soft(HTTP_LAYER_STATUSES, where).toContain(o.status);
    return;
  }
  expect.soft(CLEAR_CODES, where).toContain(o.code);
  expect.soft(o.status, where).toBeGreaterThanOrEqual(400);
  expect.soft(o.status, where).toBeLessThan(500);
  // A message a person can read: no stack trace, no raw JSON dump of validation issues.
  expect.soft(o.message.length, where).toBeGreaterThan(0);
  expect.soft(o.message, where).not.toMatch(/\n\s+at |^\s*[[{]/);
  expect.soft(o.data?.stack, where).toBeUndefined();
}

async function expectNothingChanged(path: string) {
  await settle(app);
  const now = await tableChecksums(app);
  const changed = Object.keys({ ...expected, ...now }).filter((t) => expected[t] !== now[t]);
  expected = now; // so one failure does not cascade into the next procedure's
  expect(changed, `${path}: tables changed by refused input`).toEqual([]);
}

/**
 * The batched path ("a.b,a.b,...") must fit the server's route parameter limit (Fastify's
 * maxParamLength, 100 unless configured); longer batches are refused whole with 414 before tRPC.
 */
const maxBatchPath = () => app.app.initialConfig.maxParamLength ?? 100;

/**
 * Sends the variants the way clients do: subscriptions one by one over HTTP (server-sent events);
 * queries and mutations in tRPC batches (httpBatchLink), except inputs too large to share a
 * request, which go alone (a 100k-character query string meets the HTTP layer's URL limit).
 */
async function runAll(proc: ProcedureInfo, variants: Variant[], as: { cookie: string }): Promise<Sent[]> {
  if (proc.type === 'subscription') {
    return Promise.all(variants.map(async (v) => ({ ...(await subscribeOverHttp(app.url, proc.path, v.input, as)), alone: true })));
  }
  const type = proc.type as 'query' | 'mutation';
  const sizeOf = (v: Variant) => wireSize(v.input);
  const budget = type === 'query' ? 2_000 : 600_000; // a query's inputs travel in its URL
  const outcomes: Sent[] = new Array(variants.length);
  const pending: Promise<void>[] = [];
  let batch: number[] = [];
  let used = 0;
  const flush = () => {
    const indexes = batch;
    batch = [];
    used = 0;
    if (indexes.length === 0) return;
    pending.push(
      callBatch(app.url, type, proc.path, indexes.map((i) => variants[i]!.input), as).then((res) => indexes.forEach((i, k) => (outcomes[i] = res[k]!))),
    );
  };
  variants.forEach((v, i) => {
    const size = sizeOf(v);
    if (size > budget) {
      pending.push(call(app.url, type, proc.path, v.input, as).then((o) => void (outcomes[i] = { ...o, alone: true })));
      return;
    }
    if (used + size > budget || (batch.length + 1) * (proc.path.length + 1) > maxBatchPath()) flush();
    batch.push(i);
    used += size;
  });
  flush();
  await Promise.all(pending);
  return outcomes;
}

describe('bad input on every procedure', () => {
  it('covers every procedure of the router with a fixture', () => {
    const uncovered = procedures.filter((p) => !ORG_FIXTURES[p.path] && !PERSONAL_PROCEDURES[p.path]).map((p) => p.path);
    expect(uncovered).toEqual([]);
  });

  for (const proc of procedures) {
    if (!proc.input) {
      // Procedures without input ignore whatever is sent: junk must not break them (queries only:
      // auth.signOut and auth.twoFactor.setup would end the session or start a setup, as they should).
      if (proc.type !== 'query') continue;
      it(`${proc.path} ignores junk input`, async () => {
        const cookie = w.people.owner.cookieHeader();
        for (const input of [{ orgId: 'x' }, 'text', [1, 2], HUGE.slice(0, 4_000)]) {
          const o = await call(app.url, 'query', proc.path, input, { cookie });
          expect(o.ok, `${proc.path}: ${o.ok ? '' : o.message}`).toBe(true);
        }
        await expectNothingChanged(proc.path);
      });
      continue;
    }

    it(`${proc.path} answers every bad input with a clear 4xx and changes nothing`, async () => {
      const variants = variantsFor(proc, bases.get(proc.path)!);
      expect(variants.length).toBeGreaterThan(5);
      const as = { cookie: w.people.owner.cookieHeader() };
      const outcomes = await runAll(proc, variants, as);
      variants.forEach((v, i) => expectClearRefusal(proc, v, outcomes[i]!));
      await expectNothingChanged(proc.path);
    });
  }
});

describe('malformed requests below tRPC', () => {
  it('answers a body that is not JSON, or not superjson, with 4xx', async () => {
    const cookie = w.people.owner.cookieHeader();
    const headers = { cookie, origin: app.url, 'content-type': 'application/json' };
    for (const body of ['{not json', '"just a string"', '{"json": {"name": 1}, "meta": {"values": {"name": ["bogus-type"]}}}', '[]']) {
      const res = await fetch(`${app.url}/trpc/organization.create`, { method: 'POST', headers, body });
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(res.status, body).toBeLessThan(500);
    }
    const query = await fetch(`${app.url}/trpc/organization.get?input=%7Bbroken`, { headers: { cookie } });
    expect(query.status).toBeGreaterThanOrEqual(400);
    expect(query.status).toBeLessThan(500);
  });

  it('refuses a huge array and a deeply nested object as input, on a query and a mutation', async () => {
    const as = { cookie: w.people.owner.cookieHeader() };
    for (const input of [Array.from({ length: 50_000 }, () => 0), deeplyNested(2_000)]) {
      const outcomes: Sent[] = [
        { ...(await call(app.url, 'query', 'organization.get', input, as)), alone: true },
        await call(app.url, 'mutation', 'organization.update', input, as),
        await call(app.url, 'mutation', 'auth.signUp', input, as),
      ];
      for (const o of outcomes) expectClearRefusal({ path: 'heavy input' } as ProcedureInfo, { label: show(input), input }, o);
    }
    await expectNothingChanged('heavy input');
  });

  it('refuses an unknown procedure with NOT_FOUND and a body over the limit with 413', async () => {
    const unknown = await call(app.url, 'query', 'organization.doesNotExist', { orgId: w.orgId }, { cookie: w.people.owner.cookieHeader() });
    expect(unknown.ok ? 'ok' : unknown.code).toBe('NOT_FOUND');
    const big = await call(app.url, 'mutation', 'organization.create', { name: 'x'.repeat(2_000_000) }, { cookie: w.people.owner.cookieHeader() });
    expect(big.status).toBe(413);
  });

  it('refuses a GET on a mutation and a POST on a query', async () => {
    const cookie = w.people.owner.cookieHeader();
    const get = await fetch(`${app.url}/trpc/organization.create?input=${encodeURIComponent(JSON.stringify({ json: { name: 'Via GET' } }))}`, { headers: { cookie } });
    expect(get.status).toBe(405);
    const post = await fetch(`${app.url}/trpc/organization.get`, {
      method: 'POST',
      headers: { cookie, origin: app.url, 'content-type': 'application/json' },
      body: JSON.stringify({ json: { orgId: w.orgId } }),
    });
    expect(post.status).toBe(405);
    const orgs = await w.people.owner.client.organization.list.query();
    expect(orgs.map((o) => o.name)).not.toContain('Via GET');
  });
});

/**
 * superjson payloads (as they travel, not as a client would serialize them) that once froze the
 * server: referential equalities that build a cycle or a DAG of 2^24 paths, and nesting far deeper
 * than any input. Every procedure must refuse each of them with BAD_REQUEST at once, over HTTP and
 * over WebSocket, and the server must keep answering.
 */
function aliasLadder(depth: number) {
  const json: Record<string, object> = {};
  const equalities: Record<string, string[]> = {};
  for (let i = 0; i <= depth; i++) json[`l${i}`] = {};
  for (let i = 0; i < depth; i++) equalities[`l${i + 1}`] = [`l${i}.x`, `l${i}.y`];
  return { json, meta: { referentialEqualities: equalities } };
}
function nestedArrays(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}
const HOSTILE_PAYLOADS: { label: string; wire: unknown }[] = [
  { label: 'a referential-equality cycle (81 bytes)', wire: { json: { a: {}, b: {} }, meta: { referentialEqualities: { a: ['b', 'a.x', 'b.y'] } } } },
  { label: 'a root referential-equality cycle', wire: { json: { a: {} }, meta: { referentialEqualities: [['a.self']] } } },
  { label: 'an acyclic alias ladder 24 deep (2^24 paths)', wire: aliasLadder(24) },
  { label: 'arrays nested 1000 deep', wire: { json: nestedArrays(1_000) } },
  { label: 'annotations nested 1000 deep', wire: { json: {}, meta: { values: nestedArrays(1_000) } } },
];
/** Far more than a refusal needs, far less than the 17 s and the endless loop these payloads once cost. */
const QUICK_MS = 3_000;

interface WireOutcome {
  code: string | undefined;
  message: string;
  ms: number;
}

function errorOf(serialized: unknown): { code: string | undefined; message: string } {
  const error = superjson.deserialize(serialized as never) as { message?: string; data?: { code?: string } } | undefined;
  return { code: error?.data?.code, message: error?.message ?? '' };
}

async function sendWireOverHttp(type: string, path: string, wire: unknown, cookie: string): Promise<WireOutcome> {
  const started = Date.now();
  const encoded = encodeURIComponent(JSON.stringify(wire));
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), QUICK_MS * 5);
  try {
    const res =
      type === 'mutation'
        ? await fetch(`${app.url}/trpc/${path}`, { method: 'POST', headers: { cookie, origin: app.url, 'content-type': 'application/json' }, body: JSON.stringify(wire), signal: abort.signal })
        : await fetch(`${app.url}/trpc/${path}?input=${encoded}`, { headers: { cookie }, signal: abort.signal });
    let text = '';
    if (type === 'subscription' && res.status === 200) {
      // Server-sent events: read until the error event.
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      while (!/event: serialized-error\ndata: .*\n/.test(text)) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      await reader.cancel().catch(() => {});
      const m = /event: serialized-error\ndata: (.*)\n/.exec(text);
      return { ...(m ? errorOf(JSON.parse(m[1]!)) : { code: undefined, message: text.slice(0, 200) }), ms: Date.now() - started };
    }
    text = await res.text();
    const body = JSON.parse(text) as { error?: unknown };
    return { ...errorOf(body.error), ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Sends one raw tRPC message per procedure on one socket; answers by message id. */
async function sendWireOverSocket(cookie: string, wire: unknown): Promise<Map<string, WireOutcome>> {
  const socket = new WebSocket(`${app.url.replace(/^http/, 'ws')}/trpc`, { headers: { cookie, origin: app.url } });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const started = Date.now();
  const answers = new Map<string, WireOutcome>();
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${answers.size} of ${procedures.length} procedures answered over WebSocket`)), QUICK_MS * 5);
    socket.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { id?: string | number | null; error?: unknown };
      if (msg.id === undefined || msg.id === null || !msg.error) return;
      answers.set(String(msg.id), { ...errorOf(msg.error), ms: Date.now() - started });
      if (answers.size === procedures.length) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (const proc of procedures) socket.send(JSON.stringify({ id: proc.path, method: proc.type, params: { path: proc.path, input: wire } }));
  try {
    await done;
  } finally {
    socket.close();
  }
  return answers;
}

async function expectHealthy() {
  const res = await fetch(`${app.url}/healthz`, { signal: AbortSignal.timeout(QUICK_MS) });
  expect(res.status).toBe(200);
}

describe('superjson payloads that would freeze the server', () => {
  for (const { label, wire } of HOSTILE_PAYLOADS) {
    it(`every procedure refuses ${label} at once, over HTTP`, async () => {
      const cookie = w.people.owner.cookieHeader();
      // A few at a time: the time measured is the server's, not a queue of a hundred requests.
      const outcomes: { proc: ProcedureInfo; o: WireOutcome }[] = [];
      for (let i = 0; i < procedures.length; i += 4) {
        const slice = procedures.slice(i, i + 4);
        outcomes.push(...(await Promise.all(slice.map(async (proc) => ({ proc, o: await sendWireOverHttp(proc.type, proc.path, wire, cookie) })))));
      }
      for (const { proc, o } of outcomes) {
        const where = `${proc.path}: ${o.code} ${o.message.slice(0, 120)} in ${o.ms} ms`;
        expect.soft(o.code, where).toBe('BAD_REQUEST');
        expect.soft(o.ms, where).toBeLessThan(QUICK_MS);
      }
      await expectHealthy();
      await expectNothingChanged(label);
    });

    it(`every procedure refuses ${label} at once, over WebSocket`, async () => {
      const answers = await sendWireOverSocket(w.people.owner.cookieHeader(), wire);
      for (const proc of procedures) {
        const o = answers.get(proc.path);
        const where = `${proc.path} over WebSocket: ${o?.code} ${o?.message.slice(0, 120)} in ${o?.ms} ms`;
        expect.soft(o?.code, where).toBe('BAD_REQUEST');
        expect.soft(o?.ms ?? Infinity, where).toBeLessThan(QUICK_MS);
      }
      await expectHealthy();
      await expectNothingChanged(`${label} over WebSocket`);
    });
  }

  it('refuses at once the annotations that cost most to apply: 12,000 Dates, a 900,000-digit bigint', async () => {
    const cookie = w.people.owner.cookieHeader();
    const json: Record<string, string> = {};
    const values: Record<string, [string]> = {};
    for (let i = 0; i < 12_000; i++) {
      json[`d${i}`] = '2026-01-01T00:00:00.000Z';
      values[`d${i}`] = ['Date'];
    }
    const manyDates = { json, meta: { values } };
    const hugeBigint = { json: { orgId: '9'.repeat(900_000) }, meta: { values: { orgId: ['bigint'] } } };
    for (const [wire, why] of [
      [manyDates, /too many superjson annotations/],
      [hugeBigint, /no bigint/],
    ] as const) {
      const o = await sendWireOverHttp('mutation', 'organization.update', wire, cookie);
      expect(o.code).toBe('BAD_REQUEST');
      expect(o.message).toMatch(why);
      expect(o.ms).toBeLessThan(QUICK_MS);
    }
    await expectHealthy();
    await expectNothingChanged('costly annotations');
  });

  it('says why: referential equalities and deep nesting are named in the refusal', async () => {
    const cookie = w.people.owner.cookieHeader();
    const cycle = await sendWireOverHttp('query', 'organization.list', HOSTILE_PAYLOADS[0]!.wire, cookie);
    expect(cycle.message).toMatch(/referential equalities/);
    const deep = await sendWireOverHttp('mutation', 'organization.create', { json: nestedArrays(1_000) }, cookie);
    expect(deep.message).toMatch(/nested too deeply/);
  });
});
