/** Builds the Fastify app: tRPC over HTTP and WebSocket, the SPA, /healthz. Tests use it too. */
import { metricsRegistry } from './observability/failures.js';
import { pathOf, QUIET_PATHS, requestIdOf } from './observability/logger.js';
import { observeBuiltApp } from './observability/app-source.js';
import { clusterMetricsText, inClusterWorker, prepareClusterWorkerMetrics } from './observability/cluster-metrics.js';
import { startTracing } from './observability/tracing.js';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import fastifyStatic from '@fastify/static';
import { fastifyTRPCPlugin, type CreateFastifyContextOptions } from '@trpc/server/adapters/fastify';
import { getWSConnectionHandler, type CreateWSSContextFnOptions } from '@trpc/server/adapters/ws';
import type { IncomingMessage } from 'node:http';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { WebSocket } from 'ws';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import { SocketSessionWatch } from './auth/session-watch.js';
import { isSameOriginRequest } from './auth/origin.js';
import { AppUrlWatch, isDashboardPath } from './auth/app-url.js';
import { readCookie, SESSION_COOKIE, validateSessionToken } from './auth/session.js';
import { validateApiToken } from './auth/api-token.js';
import { appRouter } from './trpc/router.js';
import { createContextInner, type Context } from './trpc/context.js';
import { sharedJsonEncoder } from './trpc/shared-output.js';
import { startKeepAlive } from './trpc/keep-alive.js';
import { createServices, type CreateServicesOptions, type Services } from './services.js';
import { startJobs } from './jobs/boss.js';
import { handleStripeWebhook } from './modules/billing/webhooks.js';
import qs from 'qs';
import { registerGateway } from './modules/gateway/register.js';
import type { UserEntity } from './modules/auth/entities.js';

export interface BuildOptions {
  config: Config;
  databaseUrl: string;
  /** pino options, or false for silence (tests). */
  logger?: boolean | object;
  /** Start pg-boss workers (off in most tests). */
  jobs?: boolean;
  clientDir?: string;
  /** Email retry timing (tests make it quick). */
  emailRetry?: CreateServicesOptions['emailRetry'];
}

export interface BuiltApp {
  app: FastifyInstance;
  services: Services;
  orm: MikroORM;
  close(): Promise<void>;
}

async function authenticate(services: Services, cookieHeader: string | undefined, bearer: string | undefined) {
  const em = services.orm.em.fork();
  if (bearer) {
    const found = await validateApiToken(em, bearer);
    if (found) return { user: found.user as UserEntity, sessionId: null, tokenId: found.tokenId };
    // A bearer that is a session token (the SPA never does this, but programs may).
    const viaSession = await validateSessionToken(em, bearer);
    return viaSession ? { user: viaSession.user, sessionId: viaSession.session.id, tokenId: null } : null;
  }
  const token = readCookie(cookieHeader, SESSION_COOKIE);
  if (!token) return null;
  const found = await validateSessionToken(em, token);
  return found ? { user: found.user, sessionId: found.session.id, tokenId: null } : null;
}

/**
 * What tRPC's WebSocket handler keeps of the upgrade request for the connection's life (it reads
 * the URL, the host and, through createContext, the cookie, user agent and peer address).
 */
function slimUpgradeRequest(raw: IncomingMessage): IncomingMessage {
  const { host, cookie } = raw.headers;
  const userAgent = raw.headers['user-agent'];
  return {
    url: raw.url,
    headers: { host, cookie, 'user-agent': userAgent },
    socket: { remoteAddress: raw.socket.remoteAddress },
  } as unknown as IncomingMessage;
}

function bearerOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const m = value ? /^Bearer\s+(\S+)$/i.exec(value) : null;
  return m?.[1];
}

export async function buildApp(opts: BuildOptions): Promise<BuiltApp> {
  const { config } = opts;
  const app = Fastify({
    logger: opts.logger ?? { level: config.logLevel },
    // Fastify's own request logging writes two lines per request; the onResponse hook below writes one.
    logController: new LogController({ disableRequestLogging: true }),
    // The caller's X-Request-Id when it is a plain token (a proxy's), else a new UUID; every response carries it.
    genReqId: requestIdOf,
    // X-Forwarded-For decides the client IP (and so the per-IP sign-in limits) only from proxies we trust.
    trustProxy: config.trustProxy,
    bodyLimit: 1024 * 1024,
    // tRPC's batch link puts every procedure name of the batch in the path.
    routerOptions: { maxParamLength: 5000 },
  });
  const log = app.log;
  // On the raw response, so streamed answers (written with writeHead) carry it too.
  app.addHook('onRequest', (req, reply, done) => {
    reply.raw.setHeader('x-request-id', req.id);
    done();
  });
  // One access line per request, at info, on the root logger (route log levels do not hide it);
  // health checks and metric scrapes that succeed at debug (they come every few seconds).
  if (opts.logger !== false) {
    app.addHook('onResponse', (req, reply, done) => {
      const url = pathOf(req.url);
      const line = { reqId: req.id, method: req.method, url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
      if (reply.statusCode < 400 && QUIET_PATHS.has(url)) log.debug(line, 'request');
      else log.info(line, 'request');
      done();
    });
  }

  const tracing = await startTracing(config.otel, log);
  const root = await createServices(config, { databaseUrl: opts.databaseUrl, log, emailRetry: opts.emailRetry });
  const { services } = root;
  const { orm, bus, billing } = services;
  const socketSessions = new SocketSessionWatch(orm, config.socketSessionCheckMs, log);
  socketSessions.start();
  if (opts.jobs) await startJobs(services);

  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });
  const unobserve = observeBuiltApp(app, services);
  prepareClusterWorkerMetrics();

  // Links and redirects follow APP_URL: say once when the dashboard is reached on another origin.
  const appUrlWatch = new AppUrlWatch(() => services.appUrl, config.allowedOrigins, log);
  // Browsers attach cookies to cross-site WebSocket upgrades; refuse those before tRPC sees them.
  // Callback-style (not async): no promise and no extra tick on every request, gateway calls included.
  app.addHook('onRequest', (req, reply, done) => {
    if (isDashboardPath(req.url)) appUrlWatch.observe(`${req.protocol}://${req.host}`);
    if (req.headers.upgrade && !isSameOriginRequest(req)) {
      reply.code(403).send({ error: 'cross-origin WebSocket connections are not allowed' });
      return;
    }
    done();
  });

  const createContext = async ({ req, res, info }: CreateFastifyContextOptions): Promise<Context> => {
    const isSocket = typeof (res as unknown as WebSocket).send === 'function' && !('raw' in res);
    const connectionParams = info.connectionParams as Record<string, string> | null;
    const cookie = req.headers.cookie;
    // tRPC keeps a socket's (slimmed) upgrade request for the socket's life; the cookie is read once, here.
    if (isSocket) req.headers.cookie = undefined;
    const bearer = isSocket ? connectionParams?.token : bearerOf(req.headers.authorization);
    const auth = await authenticate(services, cookie, bearer ?? undefined);
    const ctx = createContextInner({
      services,
      // A socket's context lives as long as the socket: a plain copy of the user, not the entity
      // (which would keep the EntityManager fork that loaded it, several KB per connection).
      user: auth ? (isSocket ? ({ ...auth.user } as UserEntity) : auth.user) : null,
      sessionId: auth?.sessionId ?? null,
      tokenId: auth?.tokenId ?? null,
      ip: isSocket ? (req.socket?.remoteAddress ?? 'unknown') : req.ip,
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : null,
      requestOrigin: isSocket ? null : `${req.protocol}://${req.host}`,
      // A socket's upgrade passed the same-origin check above (tRPC hands sockets the raw request,
      // without Fastify's proxy-aware protocol and host).
      sameOrigin: isSocket ? true : isSameOriginRequest(req),
      setCookie: isSocket ? undefined : (value) => void res.header('set-cookie', value),
      connectionId: randomUUID(),
      transport: isSocket ? 'ws' : 'http',
    });
    if (isSocket && auth) {
      // Signing out (or revoking the token) closes this socket on whichever instance holds it.
      const ws = res as unknown as WebSocket;
      const key = auth.sessionId ?? `token:${auth.tokenId}`;
      const offEnded = bus.onSessionEnded(key, () => ws.close(4001, 'session ended'));
      // A session can also run out (inactivity) while its socket stays open.
      const offExpired = auth.sessionId ? socketSessions.watch(auth.sessionId, () => ws.close(4001, 'session expired')) : null;
      // One listener for both (a socket closes once).
      ws.on('close', () => {
        offEnded();
        offExpired?.();
      });
      // A sign-out that landed between authenticating and listening above would otherwise leave
      // this socket open: check once more now that the listener is in place.
      const table = auth.sessionId ? 'session' : 'api_token';
      const id = auth.sessionId ?? auth.tokenId;
      const still = await orm.em.fork().execute(`select 1 from ${table} where id = ?`, [id]);
      if (still.length === 0) ws.close(4001, 'session ended');
    }
    return ctx;
  };

  await app.register(fastifyTRPCPlugin, { prefix: '/trpc', trpcOptions: { router: appRouter, createContext } });
  // WebSockets on /trpc: tRPC's connection handler, mounted here rather than by the plugin's
  // `useWSS` so that an open socket keeps only what it needs (bench/live-fanout: memory per idle
  // subscriber). The upgrade still goes through Fastify's hooks (the same-origin check above).
  const onConnection = getWSConnectionHandler<typeof appRouter>({
    wss: app.websocketServer,
    router: appRouter,
    createContext: createContext as unknown as (opts: CreateWSSContextFnOptions) => Promise<Context>,
    // A live event's payload is written from the text serialized for its first subscriber.
    experimental_encoder: sharedJsonEncoder,
  });
  // tRPC's keep-alive protocol (PING after 30 s of silence, terminated 10 s later), one timer for all sockets.
  const keepAlive = startKeepAlive(app.websocketServer, { pingMs: 30_000, pongWaitMs: 10_000 });
  app.addHook('onClose', async () => keepAlive.stop());
  app.get('/trpc', { websocket: true }, (socket, request) => {
    // @fastify/websocket's error listener holds Fastify's request and reply for the socket's whole
    // life; this one holds nothing (an unclean disconnect or a bad frame ends the socket, logged).
    socket.removeAllListeners('error');
    socket.on('error', (err) => {
      log.warn({ err }, 'WebSocket connection failed; closed');
      socket.terminate();
    });
    keepAlive.watch(socket);
    const raw = request.raw;
    // The upgraded TCP socket still points at the HTTP response that was never sent (and it at
    // the request, its headers and buffers): let them go.
    const tcp = raw.socket as typeof raw.socket & { _httpMessage?: { detachSocket(s: unknown): void } | null };
    tcp._httpMessage?.detachSocket(tcp);
    onConnection(socket, slimUpgradeRequest(raw));
  });

  await registerGateway(app, services);

  // Stripe webhooks: the signature is over the exact bytes, so this route keeps the raw body.
  await app.register(async (scope) => {
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
    scope.post('/api/stripe/webhook', async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const signature = req.headers['stripe-signature'];
      const result = await handleStripeWebhook(services, body, Array.isArray(signature) ? signature[0] : signature);
      return reply.code(result.status).send(result.body);
    });
  });

  if (billing.fake) {
    const fake = billing.fake;
    // A development tool: loaded only when the test-payment provider runs (never in production).
    const { registerCheckoutPages } = await import('./dev/test-payments/checkout-page.js');
    await app.register(async (scope) => {
      scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, qs.parse(body as string)));
      registerCheckoutPages(scope, fake);
    });
  }
  // The test-payment provider delivers its events to our own webhook, on whatever port we listen.
  app.addHook('onListen', async () => {
    const address = app.server.address();
    if (typeof address === 'object' && address) billing.setWebhookUrl(`http://127.0.0.1:${address.port}/api/stripe/webhook`);
  });

  // Prometheus metrics (caught failures on money, event and after-commit paths, for now).
  app.get('/metrics', async (req, reply) => {
    if (config.metricsToken && req.headers.authorization !== `Bearer ${config.metricsToken}`) {
      return reply.code(401).send({ error: 'metrics need Authorization: Bearer <METRICS_TOKEN>' });
    }
    if (!inClusterWorker()) return reply.type(metricsRegistry.contentType).send(await metricsRegistry.metrics());
    // WORKERS > 1: the primary sums every worker's metrics (server/observability/cluster-metrics.ts).
    try {
      return reply.type(metricsRegistry.contentType).send(await clusterMetricsText());
    } catch (err) {
      log.warn({ err }, 'cluster metrics unavailable');
      return reply.code(503).send({ error: 'the metrics of the other workers could not be collected; retry' });
    }
  });

  app.get('/healthz', async (_req, reply) => {
    try {
      await orm.em.fork().execute('select 1');
      return { ok: true };
    } catch {
      return reply.code(503).send({ ok: false, error: 'database unavailable' });
    }
  });

  const clientDir = opts.clientDir ?? resolve('dist/client');
  if (existsSync(resolve(clientDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: clientDir,
      wildcard: false,
      index: ['index.html'],
      // The build writes name.br and name.gz next to each file (vite.config.ts): sent when accepted.
      preCompressed: true,
      cacheControl: false,
      setHeaders: (res, path) => {
        // Hashed file names change with their content: cached for good. Everything else (index.html)
        // is checked on every load, so a deploy reaches everyone at the next navigation.
        res.setHeader('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
        res.setHeader('vary', 'accept-encoding');
      },
    });
  }
  app.setNotFoundHandler((req, reply) => {
    // A missing asset (an old chunk after a deploy) is a 404, not the page: the browser can tell.
    const apiPath = /^\/(trpc|v1|api|healthz|assets)(\/|$)/.test(req.url);
    if (req.method === 'GET' && !apiPath && existsSync(resolve(clientDir, 'index.html'))) {
      return reply.type('text/html').sendFile('index.html', clientDir);
    }
    return reply.code(404).send({ error: 'not found' });
  });

  return {
    app,
    services,
    orm,
    async close() {
      socketSessions.stop();
      await app.close();
      await root.close();
      unobserve();
      await tracing?.shutdown();
    },
  };
}
