/**
 * A local fake upstream that speaks OpenAI's chat completions (POST /v1/chat/completions) and
 * Anthropic's Messages API (POST /v1/messages), streaming and not. Deterministic: the answer has
 * `[chunks:N]` words (default 5), prompt tokens are 10 + the number of words in the messages.
 * Directives in the last user message drive failures:
 *   [status:500]   answer with that HTTP status and an error body (429 with `retry-after: 7`)
 *   [delay:MS]     wait before answering
 *   [slow:MS]      wait between stream chunks
 *   [malformed]    non-stream: a body that is not JSON; stream: a broken event after the first chunk
 *   [truncate]     stream: end after the first chunk without finishing
 *   [cached:N]     report N cached prompt tokens
 *   [cachewrite:N] report N prompt tokens written to the cache (Anthropic's cache_creation_input_tokens)
 *   [fail-mid]     stream: an error event after the first chunk
 *   [reset]        stream: the connection is destroyed after the first chunk (no clean end)
 *   [nousage]      OpenAI: the answer (or stream) reports no usage
 *   [hang]         never answer (no headers) until the caller gives up
 * Faults of the server itself, whatever the message (routing tests: one upstream fails, another
 * answers the same request): `startFakeUpstream({ faults })` or `upstream.faults = [...]`, each
 * applying to every request (or a seeded random share of them, or one authorization header only):
 *   { status: 500 }                      that status and an error body ({ status: 429, retryAfter: '1' })
 *   { hang: true }                       no headers until the caller gives up
 *   { cut: true }                        200, then the connection drops (a stream: after its first chunk)
 *   { status: 500, rate: 0.3 }           30% of requests, chosen by a generator seeded with `seed`
 *   { status: 401, authorization: 'Bearer sk-bad' }   only requests made with that key
 * `upstream.faulted` counts the requests a fault answered.
 * Also used by `npm run demo` and the benches.
 */
import http from 'node:http';
import aws4 from 'aws4';
import { encodeEventMessage } from '../../server/modules/gateway/upstream/eventstream.js';

/** The IAM access key the fake Bedrock accepts SigV4 signatures from (any other is refused with 403). */
export const FAKE_AWS_CREDENTIALS = { accessKeyId: 'AKIAFAKEGATEWAYTEST1', secretAccessKey: 'fake/Secret+Key/For/The/Gateway/Tests00' };

/**
 * Checks a SigV4-signed request the way AWS does: the signature over the method, path, query,
 * signed headers and the body's hash, made with the known secret, and a date within 5 minutes.
 */
function sigV4Problem(req: http.IncomingMessage, rawBody: string): string | null {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return 'Authorization header is not SigV4';
  const [, keyId, , region, service, signedHeaders] = m;
  if (keyId !== FAKE_AWS_CREDENTIALS.accessKeyId) return 'The security token included in the request is invalid.';
  const date = String(req.headers['x-amz-date'] ?? '');
  const at = Date.parse(date.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!Number.isFinite(at) || Math.abs(Date.now() - at) > 5 * 60_000) return 'Signature expired or X-Amz-Date missing';
  const headers: Record<string, string> = {};
  for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
  const url = new URL(req.url ?? '/', 'http://fake');
  const expected = { host: headers.host, path: `${url.pathname}${url.search}`, method: req.method, service, region, headers, body: rawBody };
  aws4.sign(expected, FAKE_AWS_CREDENTIALS);
  return (expected.headers as Record<string, string>).Authorization === auth ? null : 'The request signature we calculated does not match the signature you provided.';
}
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** Extra endpoints of the fake, matched by path suffix before the built-in ones (see registerFakeRoute). */
/** Returning `false` declines the request: the built-in answer handles it (e.g. a route adding directives to '/messages'). */
export type FakeRoute = (ctx: { req: http.IncomingMessage; res: http.ServerResponse; path: string; body: Record<string, unknown>; rawBody: string }) => Promise<void | boolean> | void | boolean;
const extraRoutes: [suffix: string, route: FakeRoute][] = [];

/**
 * Adds an endpoint to every fake upstream (e.g. '/responses', '/embeddings', '/messages/count_tokens'):
 * modules under tests/helpers register theirs at import. Requests to it are recorded like the others.
 */
export function registerFakeRoute(suffix: string, route: FakeRoute): void {
  if (!extraRoutes.some(([s]) => s === suffix)) extraRoutes.push([suffix, route]);
}

/** A failure of the whole fake upstream (see the header). */
export interface Fault {
  status?: number;
  /** Sent as retry-after with the status. */
  retryAfter?: string;
  hang?: boolean;
  cut?: boolean;
  /** The share of requests it applies to (0 to 1, seeded); default all. */
  rate?: number;
  /** Only requests with this authorization (or x-api-key / api-key) header. */
  authorization?: string;
}

/** A small seeded generator (mulberry32): the same sequence of numbers in [0, 1) for a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FakeUpstream {
  url: string;
  /** Faults applied to every request from now on (see the header); replace to change. */
  faults: Fault[];
  /** Requests a fault answered. */
  faulted: number;
  /** Every request received, oldest first. */
  requests: ReceivedRequest[];
  /** Streams currently open (to see that an aborted client aborts the upstream call). */
  openStreams(): number;
  close(): Promise<void>;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p && typeof p === 'object' && 'text' in p ? String((p as { text: unknown }).text) : '')).join(' ');
  return '';
}

function directive(text: string, name: string): number | null {
  const m = new RegExp(`\\[${name}(?::(\\d+))?\\]`).exec(text);
  return m ? Number(m[1] ?? 1) : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function promptTokensOf(messages: { content?: unknown }[], system?: unknown): number {
  const words = [...messages.map((m) => textOf(m.content)), textOf(system)].join(' ').split(/\s+/).filter(Boolean).length;
  return 10 + words;
}

export async function startFakeUpstream(opts: { port?: number; record?: boolean; faults?: Fault[]; seed?: number } = {}): Promise<FakeUpstream> {
  const requests: ReceivedRequest[] = [];
  let open = 0;
  const record = opts.record ?? true;
  const random = seededRandom(opts.seed ?? 1);
  const hanging = new Set<http.ServerResponse>();
  /** The fault for this request, if any (a random share draws from the seeded generator). */
  const faultFor = (req: http.IncomingMessage): Fault | null => {
    for (const f of fake.faults) {
      if (f.authorization !== undefined) {
        const auth = String(req.headers.authorization ?? req.headers['x-api-key'] ?? req.headers['api-key'] ?? '');
        if (auth !== f.authorization && auth !== f.authorization.replace(/^Bearer /, '')) continue;
      }
      if (f.rate !== undefined && random() >= f.rate) continue;
      return f;
    }
    return null;
  };

  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      void (async () => {
        let body: Record<string, unknown>;
        const rawBody = Buffer.concat(parts).toString('utf8');
        if (String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256')) {
          const problem = sigV4Problem(req, rawBody);
          if (problem) {
            res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message: problem }));
            return;
          }
        }
        try {
          body = JSON.parse(rawBody || '{}');
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad json', type: 'invalid_request_error' } }));
          return;
        }
        const path = (req.url ?? '').split('?')[0]!;
        if (record) requests.push({ path, headers: req.headers, body });
        const fault = faultFor(req);
        const wantsStream = body.stream === true || path.endsWith('/invoke-with-response-stream');
        if (fault) {
          fake.faulted++;
          if (fault.hang) {
            hanging.add(res);
            res.on('close', () => hanging.delete(res));
            return;
          }
          if (fault.status) {
            res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) }).end(JSON.stringify({ error: { message: `fake upstream fault ${fault.status}`, type: 'server_error' } }));
            return;
          }
          if (fault.cut && !wantsStream) {
            // Headers and the start of a body, then the connection drops.
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('{"id":"cut","object":');
            await sleep(20);
            res.destroy();
            return;
          }
        }
        const cutStream = fault?.cut === true && wantsStream;
        if (cutStream && !path.endsWith('/chat/completions') && !path.endsWith('/messages') && !path.includes('/model/')) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: {"type":"response.created","response":{"id":"resp_cut","output":[]}}\n\n');
          await sleep(30);
          res.destroy();
          return;
        }
        const extra = extraRoutes.find(([suffix]) => path.endsWith(suffix));
        if (extra && (await extra[1]({ req, res, path, body, rawBody })) !== false) return;
        const messages = (Array.isArray(body.messages) ? body.messages : []) as { role: string; content?: unknown }[];
        const lastUser = [...messages].reverse().find((m) => m.role === 'user');
        const text = textOf(lastUser?.content);
        if (directive(text, 'hang') !== null) {
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        }
        const delay = directive(text, 'delay');
        if (delay) await sleep(delay);
        const status = directive(text, 'status');
        // AWS Bedrock's InvokeModel for Claude: Anthropic's body and answer, the stream in AWS event stream frames.
        const invoke = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/.exec(path);
        const anthropic = path.endsWith('/messages') || invoke !== null;
        if (!anthropic && !path.endsWith('/chat/completions')) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${path}` } }));
          return;
        }
        if (status && status !== 200) {
          const error = invoke ? { message: `fake upstream failure ${status}` } : anthropic ? { type: 'error', error: { type: 'api_error', message: `fake upstream failure ${status}` } } : { error: { message: `fake upstream failure ${status}`, type: 'server_error' } };
          // Rate limited: says when to retry, as providers do (the gateway passes it on).
          res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '7' } : {}) }).end(JSON.stringify(error));
          return;
        }
        const chunks = directive(text, 'chunks') ?? 5;
        const cached = directive(text, 'cached') ?? 0;
        const written = directive(text, 'cachewrite') ?? 0;
        const promptTokens = promptTokensOf(messages, body.system) + cached + written;
        const words = Array.from({ length: chunks }, (_, i) => `w${i} `);
        const model = invoke ? decodeURIComponent(invoke[1]!) : String(body.model);
        const stream = invoke ? invoke[2] === 'invoke-with-response-stream' : body.stream === true;
        const slow = directive(text, 'slow') ?? 0;
        const malformed = directive(text, 'malformed') !== null;
        const truncate = directive(text, 'truncate') !== null;
        const failMid = directive(text, 'fail-mid') !== null;
        const reset = directive(text, 'reset') !== null || cutStream;
        const noUsage = directive(text, 'nousage') !== null;
        if (!stream) {
          if (malformed) {
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"this is": not json');
            return;
          }
          const content = words.join('');
          const payload = anthropic
            ? {
                id: 'msg_fake',
                type: 'message',
                role: 'assistant',
                model,
                content: [{ type: 'text', text: content }],
                stop_reason: 'end_turn',
                usage: { input_tokens: promptTokens - cached - written, output_tokens: chunks, cache_read_input_tokens: cached, cache_creation_input_tokens: written },
              }
            : {
                id: 'chatcmpl-fake',
                object: 'chat.completion',
                created: Math.floor(Date.now() / 1000),
                model,
                choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
                ...(noUsage ? {} : { usage: { prompt_tokens: promptTokens, completion_tokens: chunks, total_tokens: promptTokens + chunks, prompt_tokens_details: { cached_tokens: cached } } }),
              };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
          return;
        }
        open++;
        let closed = false;
        res.on('close', () => {
          if (!closed) open--;
          closed = true;
        });
        res.writeHead(200, { 'content-type': invoke ? 'application/vnd.amazon.eventstream' : 'text/event-stream', 'cache-control': 'no-cache' });
        const send = (event: string | null, data: unknown) => {
          if (closed) return;
          if (invoke) {
            const bytes = Buffer.from(JSON.stringify(data)).toString('base64');
            res.write(encodeEventMessage({ ':event-type': 'chunk', ':content-type': 'application/json', ':message-type': 'event' }, JSON.stringify({ bytes, p: 'abcdef' })));
            return;
          }
          res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
        };
        const created = Math.floor(Date.now() / 1000);
        if (anthropic) {
          send('message_start', { type: 'message_start', message: { id: 'msg_fake', type: 'message', role: 'assistant', model, content: [], usage: { input_tokens: promptTokens - cached - written, cache_read_input_tokens: cached, cache_creation_input_tokens: written, output_tokens: 1 } } });
          send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
        }
        for (let i = 0; i < chunks; i++) {
          if (closed) return;
          if (slow) await sleep(slow);
          if (anthropic) send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: words[i] } });
          else send(null, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: words[i] } : { content: words[i] }, finish_reason: null }] });
          if (i === 0 && malformed) {
            // Bedrock: a frame whose prelude checksum is wrong.
            res.end(invoke ? Buffer.from([0, 0, 0, 32, 0, 0, 0, 0, 1, 2, 3, 4]) : 'data: {"broken": \n\n');
            return;
          }
          if (i === 0 && reset) {
            // Let the first chunk reach the gateway, then drop the connection.
            await sleep(30);
            res.destroy();
            return;
          }
          if (i === 0 && truncate) {
            res.end();
            return;
          }
          if (i === 0 && failMid) {
            if (invoke) res.write(encodeEventMessage({ ':exception-type': 'throttlingException', ':content-type': 'application/json', ':message-type': 'exception' }, JSON.stringify({ message: 'fake throttling' })));
            else if (anthropic) send('error', { type: 'error', error: { type: 'overloaded_error', message: 'fake overload' } });
            else send(null, { error: { message: 'fake overload', type: 'server_error' } });
            res.end();
            return;
          }
        }
        if (anthropic) {
          send('content_block_stop', { type: 'content_block_stop', index: 0 });
          send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: chunks } });
          send('message_stop', { type: 'message_stop' });
        } else {
          send(null, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
          const options = body.stream_options as { include_usage?: boolean } | undefined;
          if (options?.include_usage && !noUsage) {
            send(null, { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created, model, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: chunks, total_tokens: promptTokens + chunks, prompt_tokens_details: { cached_tokens: cached } } });
          }
          send(null, '[DONE]');
        }
        res.end();
      })();
    });
  });
  const fake: FakeUpstream = {
    url: '',
    faults: opts.faults ?? [],
    faulted: 0,
    requests,
    openStreams: () => open,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  return fake;
}

/** Environment pointing every provider of the gateway at the fake (operator keys included). */
export function fakeUpstreamEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENAI_API_KEY: 'sk-operator-openai',
    OPENAI_BASE_URL: `${url}/v1`,
    ANTHROPIC_API_KEY: 'sk-operator-anthropic',
    ANTHROPIC_BASE_URL: url,
    GEMINI_API_KEY: 'operator-gemini',
    GEMINI_BASE_URL: `${url}/v1`,
    DASHSCOPE_API_KEY: 'operator-dashscope',
    DASHSCOPE_BASE_URL: `${url}/v1`,
    // Bedrock URLs only (no operator key): organizations bring their own Bedrock keys in the tests.
    BEDROCK_BASE_URL: `${url}/v1`,
    BEDROCK_RUNTIME_BASE_URL: url,
    GATEWAY_UPSTREAM_TIMEOUT_MS: '1500',
    ...extra,
  };
}
