/**
 * How procedure inputs are read off the wire (HTTP, batches and WebSocket messages alike): superjson,
 * with the shapes no input needs refused before superjson applies them.
 *
 * - `meta.referentialEqualities` makes superjson alias one object at many paths: 81 bytes can build a
 *   cycle, 800 bytes a DAG that any walk visits 2^24 times. No input of ours is a graph, so inputs
 *   that ask for aliasing are refused outright.
 * - Every payload is walked once, iteratively, with a budget of nodes and depth; JSON.parse only
 *   makes trees, so that walk is linear in the request's size.
 *
 * A refused input is not thrown here: tRPC would turn a throw into a PARSE_ERROR for the whole
 * WebSocket message (with no id to answer). It becomes a refused-input marker, and publicProcedure answers
 * that call alone with BAD_REQUEST and the reason.
 */
import superjson from 'superjson';
import type { SuperJSONResult } from 'superjson';

/** Deepest nesting any input may have (the deepest real input is under 10 levels). */
export const MAX_INPUT_DEPTH = 64;
/** Most values (objects, arrays, strings, numbers...) one input may hold. */
export const MAX_INPUT_NODES = 100_000;
/**
 * Most values superjson's `meta` may hold: applying annotations costs ~35 µs each (50,000 Dates in
 * a 1 MB body held the event loop for 1.7 s); real inputs carry a handful (dates, undefined).
 */
export const MAX_META_NODES = 2_000;

const REFUSED = Symbol('refused input');

/**
 * Stands in for an input refused while being read; publicProcedure answers BAD_REQUEST with the
 * reason. The reason sits under a symbol key, so it survives tRPC spreading `lastEventId` into a
 * subscription's input.
 */
export function refusedInput(reason: string): object {
  return { [REFUSED]: reason };
}

/** Why the input was refused while being read, if it was. */
export function refusalOf(rawInput: unknown): string | undefined {
  return rawInput !== null && typeof rawInput === 'object' && REFUSED in rawInput ? String((rawInput as Record<symbol, unknown>)[REFUSED]) : undefined;
}

export type InputBudgetProblem = 'too-deep' | 'too-many-values';

export function budgetMessage(problem: InputBudgetProblem): string {
  return problem === 'too-deep'
    ? `the input is nested too deeply (more than ${MAX_INPUT_DEPTH} levels)`
    : `the input holds too many values (more than ${MAX_INPUT_NODES})`;
}

/**
 * Walks a value (JSON or deserialized: arrays, plain objects, Maps, Sets) within the budget, calling
 * `visit` on every string (keys included). Stops early when `visit` returns true. A value seen twice
 * on the walk counts twice, so even an aliased graph costs at most the budget.
 */
export function walkWithinBudget(root: unknown, visit: (s: string) => boolean = () => false, maxNodes = MAX_INPUT_NODES): InputBudgetProblem | 'stopped' | null {
  const stack: [unknown, number][] = [[root, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++nodes > maxNodes) return 'too-many-values';
    if (typeof value === 'string') {
      if (visit(value)) return 'stopped';
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_INPUT_DEPTH) return 'too-deep';
    let children: Iterable<unknown>;
    if (Array.isArray(value)) children = value;
    else if (value instanceof Map) children = [...value.keys(), ...value.values()];
    else if (value instanceof Set) children = value;
    else if (value instanceof Date) continue;
    else children = [...Object.keys(value), ...Object.values(value)];
    for (const child of children) stack.push([child, depth + 1]);
  }
  return null;
}

function checkWirePayload(payload: unknown): string | null {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return 'the input must be superjson: an object with "json" (and optionally "meta")';
  const meta = (payload as { meta?: unknown }).meta;
  if (meta !== undefined && (meta === null || typeof meta !== 'object' || Array.isArray(meta))) return 'the input\'s superjson "meta" must be an object';
  if (meta && 'referentialEqualities' in meta) return 'inputs must not use superjson referential equalities (meta.referentialEqualities): send plain values';
  if (meta) {
    // No input takes a bigint, and parsing one is superlinear in its digits (about 1 s for a 1 MB number).
    const scan = walkWithinBudget(meta, (text) => text === 'bigint', MAX_META_NODES);
    if (scan === 'stopped') return 'inputs take no bigint values';
    if (scan === 'too-many-values') return `the input carries too many superjson annotations (more than ${MAX_META_NODES} values in "meta")`;
    if (scan === 'too-deep') return budgetMessage(scan);
  }
  const problem = walkWithinBudget(payload);
  return problem === 'too-deep' || problem === 'too-many-values' ? budgetMessage(problem) : null;
}

/** The `input` half of the tRPC transformer (the output half is plain superjson). */
export const inputTransformer = {
  serialize: (value: unknown) => superjson.serialize(value),
  deserialize(payload: unknown): unknown {
    // A WebSocket message may leave its input out: no input, as over HTTP.
    if (payload === undefined) return undefined;
    const problem = checkWirePayload(payload);
    if (problem) return refusedInput(problem);
    try {
      return superjson.deserialize(payload as SuperJSONResult);
    } catch {
      // Bogus annotations (an unknown type name, a path that is not there): the caller's to fix.
      return refusedInput('the input is not valid superjson (its "meta" does not match its "json")');
    }
  },
};
