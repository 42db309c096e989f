/**
 * UpstreamPools.postJsonWhole (upstream/http.ts): an answer read whole through undici's dispatch
 * API. Against a real local HTTP server: status, headers and body as sent; a body over the limit,
 * a connection cut mid-body, a deadline and a cancel each end as the gateway's own error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../server/modules/gateway/errors.js';
import { UpstreamPools } from '../../server/modules/gateway/upstream/http.js';

let server: Server;
let base = '';
const seen: { headers: IncomingMessage['headers']; body: string }[] = [];

function handle(req: IncomingMessage, res: ServerResponse) {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    seen.push({ headers: req.headers, body: Buffer.concat(parts).toString('utf8') });
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'one' });
        // Three writes: the body arrives in several chunks; a multi-byte character is split across two.
        res.write('{"text":"caf');
        res.write(Buffer.from('é', 'utf8').subarray(0, 1));
        res.end(Buffer.concat([Buffer.from('é', 'utf8').subarray(1), Buffer.from('"}')]));
        return;
      case '/limited':
        res.writeHead(429, [
          ['content-type', 'application/json'],
          ['retry-after', '7'],
          ['set-cookie', 'a=1'],
          ['set-cookie', 'b=2'],
        ] as unknown as Record<string, string>);
        res.end('{"error":{"message":"slow down"}}');
        return;
      case '/big':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`"${'x'.repeat(4096)}"`);
        return;
      case '/cut':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setTimeout(() => res.destroy(), 20);
        return;
      case '/slow':
        setTimeout(() => {
          if (!res.destroyed) res.end('{}');
        }, 2000);
        return;
      default:
        res.writeHead(404).end();
    }
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function failureOf(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

describe('postJsonWhole', () => {
  it('resolves with the status, headers and whole body, and sends the payload and headers', async () => {
    const pools = new UpstreamPools();
    try {
      const call = pools.postJsonWhole(`${base}/ok`, { authorization: 'Bearer sk-test' }, '{"model":"m"}', 5000, 'Fake');
      const res = await call.response;
      expect(res.status).toBe(200);
      expect(res.headers['x-upstream']).toBe('one');
      expect(await res.text()).toBe('{"text":"café"}');
      const chunks: Buffer[] = [];
      for await (const c of res.body()) chunks.push(c);
      expect(Buffer.concat(chunks).toString('utf8')).toBe('{"text":"café"}');
      const last = seen.at(-1)!;
      expect(last.body).toBe('{"model":"m"}');
      expect(last.headers['content-type']).toBe('application/json');
      expect(last.headers.authorization).toBe('Bearer sk-test');
    } finally {
      await pools.close();
    }
  });

  it('passes an error status through with its body and headers (repeated headers as a list)', async () => {
    const pools = new UpstreamPools();
    try {
      const res = await pools.postJsonWhole(`${base}/limited`, {}, '{}', 5000, 'Fake').response;
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('7');
      expect(res.headers['set-cookie']).toEqual(['a=1', 'b=2']);
      expect(JSON.parse(await res.text())).toEqual({ error: { message: 'slow down' } });
    } finally {
      await pools.close();
    }
  });

  it('refuses an answer larger than its limit', async () => {
    const pools = new UpstreamPools();
    try {
      const err = await failureOf(pools.postJsonWhole(`${base}/big`, {}, '{}', 5000, 'Fake', 1024).response);
      expect(err.message).toBe('Fake sent a response larger than 1024 bytes');
      // The pool still works afterwards.
      expect((await pools.postJsonWhole(`${base}/ok`, {}, '{}', 5000, 'Fake').response).status).toBe(200);
    } finally {
      await pools.close();
    }
  });

  it('reports a connection cut mid-body as a disconnect', async () => {
    const pools = new UpstreamPools();
    try {
      const err = await failureOf(pools.postJsonWhole(`${base}/cut`, {}, '{}', 5000, 'Fake').response);
      expect(err.code).toBe('upstream_disconnected');
    } finally {
      await pools.close();
    }
  });

  it('times out when no answer comes within the deadline', async () => {
    const pools = new UpstreamPools();
    try {
      const err = await failureOf(pools.postJsonWhole(`${base}/slow`, {}, '{}', 200, 'Fake').response);
      expect(err.code).toBe('upstream_timeout');
    } finally {
      await pools.close();
    }
  });

  it('is canceled by abort(), before or while the upstream works', async () => {
    const pools = new UpstreamPools();
    try {
      const early = pools.postJsonWhole(`${base}/slow`, {}, '{}', 5000, 'Fake');
      early.abort();
      expect((await failureOf(early.response)).status).toBe(499);
      const late = pools.postJsonWhole(`${base}/slow`, {}, '{}', 5000, 'Fake');
      setTimeout(() => late.abort(), 50);
      const started = Date.now();
      expect((await failureOf(late.response)).status).toBe(499);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      await pools.close();
    }
  });

  it('reports an unreachable upstream', async () => {
    const pools = new UpstreamPools();
    try {
      const err = await failureOf(pools.postJsonWhole('http://127.0.0.1:1/x', {}, '{}', 5000, 'Fake').response);
      expect(err.code).toBe('upstream_unreachable');
    } finally {
      await pools.close();
    }
  });
});
