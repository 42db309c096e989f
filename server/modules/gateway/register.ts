/**
 * The gateway's HTTP surface, registered by one call from buildApp: POST /v1/chat/completions and
 * GET /v1/models under /v1, with OpenAI-shaped errors (also for bad JSON, oversized bodies and
 * unknown /v1 paths), plus the metering pipeline and its drain on close.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { UsageEvents } from '../usage/live.js';
import { UsageMeter } from '../usage/meter.js';
import { handleChatCompletion, RoutedTargets } from './completions.js';
import { errorBody, GatewayError } from './errors.js';
import { isDatabaseUnavailable } from '../../db/pg-errors.js';
import { getModel, listModels } from './models.js';
import { registerEmbeddingsRoutes } from './embeddings.js';
import { registerMessagesRoutes } from './messages.js';
import { registerResponsesRoutes } from './responses.js';
import { registerCors } from './cors.js';
import { authorizationOf } from './call.js';
import { GatewayRuntime } from './runtime.js';
import { UpstreamPools } from './upstream/http.js';
import { createUpstreamGuard } from './upstream/guard.js';
import { VertexTokens } from './vertex.js';
import { SharedProviderHealth } from './health.js';
import { DomainError } from '../../errors.js';
import { fromDomainError } from './errors.js';
import { SpendLimits } from '../limits/engine.js';

export interface Gateway {
  runtime: GatewayRuntime;
  meter: UsageMeter;
  events: UsageEvents;
  targets: RoutedTargets;
  upstream: UpstreamPools;
  vertex: VertexTokens;
  /** Provider health shared by every instance (circuits, cool-downs, the Providers page's figures). */
  health: SharedProviderHealth;
  /** Spend limits: this instance's leases and the calls' reservations (server/modules/limits/engine.ts). */
  limits: SpendLimits;
  /** Starts the runtime's listener and provider health's flush-and-read timer. */
  start(): Promise<void>;
  /** Drains every pending usage record and stops the gateway's connections (after app.close()). */
  close(): Promise<void>;
}

/** The gateway's long-lived parts, built by createServices (server/services.ts) as `services.gateway`. */
export function createGateway(services: Services, databaseUrl: string): Gateway {
  const config = services.config.gateway;
  const runtime = new GatewayRuntime(services, databaseUrl);
  const events = new UsageEvents(services);
  const limits = new SpendLimits(services, databaseUrl);
  const meter = new UsageMeter(services, {
    windowMs: config.batchWindowMs,
    databaseUrl,
    usageEvents: events,
    onCommitted: (records) => limits.committed(records),
    onBalance: (orgId, credits) => runtime.setBalance(orgId, credits),
    // Never committed: what their costs took from this instance's leases is free again.
    onGivenUp: (records) => limits.forfeit(records),
  });
  events.batchComing = () => meter.batchComing;
  // Tenants' upstream URLs connect only to public addresses unless the operator allows private ones.
  const upstream = new UpstreamPools(createUpstreamGuard(config));
  const health = new SharedProviderHealth(databaseUrl, services.log);
  return {
    runtime,
    meter,
    events,
    targets: new RoutedTargets(),
    upstream,
    vertex: new VertexTokens(),
    health,
    limits,
    async start() {
      await runtime.start();
      health.start();
    },
    async close() {
      await meter.close();
      await limits.close();
      await health.close();
      await events.close();
      await runtime.stop();
      await upstream.close();
    },
  };
}

/** What the /v1 not-found answer lists. */
const SERVED_ENDPOINTS =
  'POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/responses, GET /v1/responses/{id}, POST /v1/embeddings, GET /v1/models and GET /v1/models/{id}';

/** Deeper than any chat request (JSON schemas in tools and response_format included); far from the stack's limit. */
const MAX_BODY_DEPTH = 128;

/** Whether a parsed JSON value has arrays/objects nested deeper than `limit` (iterative: no recursion to overflow). */
function nestsDeeperThan(root: unknown, limit: number): boolean {
  if (root === null || typeof root !== 'object') return false;
  const stack: [object, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (depth > limit) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (child !== null && typeof child === 'object') stack.push([child as object, depth + 1]);
    }
  }
  return false;
}

/** Registers POST /v1/chat/completions and GET /v1/models for the services' gateway. */
export async function registerGateway(app: FastifyInstance, services: Services): Promise<Gateway> {
  const gateway = services.gateway;
  if (!gateway) throw new Error('registerGateway: these services were built without a gateway');
  const config = services.config.gateway;
  const { runtime } = gateway;
  const deps = { runtime, meter: gateway.meter, targets: gateway.targets, upstream: gateway.upstream, vertex: gateway.vertex, health: gateway.health, limits: gateway.limits, config, log: services.log };

  await app.register(
    async (scope) => {
      scope.setErrorHandler((err: FastifyError | GatewayError, _req, reply) => {
        if (err instanceof GatewayError) return reply.code(err.status).headers(err.headers).send(err.toJSON());
        if (err instanceof DomainError) {
          const mapped = fromDomainError(err);
          return reply.code(mapped.status).headers(mapped.headers).send(mapped.toJSON());
        }
        // PostgreSQL restarting or unreachable: nothing was served; the client may retry shortly.
        if (isDatabaseUnavailable(err)) {
          services.log.warn({ err }, 'gateway call refused: the database is unavailable');
          return reply.code(503).header('retry-after', '2').send(errorBody('the gateway cannot reach its database right now; retry in a few seconds', 'server_error', 'database_unavailable'));
        }
        const status = err.statusCode ?? 500;
        if (status >= 500) {
          services.log.error({ err }, 'gateway request failed');
          return reply.code(500).send(errorBody('something went wrong in the gateway; please retry', 'server_error'));
        }
        const message =
          err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
            ? `the request body is larger than ${config.maxBodyBytes} bytes`
            : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
              ? 'send the request body as application/json'
              : err.code?.startsWith('FST_ERR_CTP')
                ? `the request body is not valid JSON: ${err.message}`
                : err.message;
        return reply.code(status).send(errorBody(message, 'invalid_request_error'));
      });
      // Plain JSON.parse: the body is only read and re-serialized, never merged into other objects,
      // so Fastify's prototype-poisoning scan (a regex over every body) buys nothing here.
      scope.removeContentTypeParser('application/json');
      scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: config.maxBodyBytes }, (_req, body, done) => {
        try {
          const parsed: unknown = JSON.parse(body as string);
          // JSON.parse takes any depth, but re-serializing (JSON.stringify recurses) would overflow the stack: a 500.
          if (nestsDeeperThan(parsed, MAX_BODY_DEPTH)) {
            done(Object.assign(new Error(`the request body nests deeper than ${MAX_BODY_DEPTH} levels of arrays and objects`), { statusCode: 400, code: 'GATEWAY_BODY_TOO_DEEP' }), undefined);
            return;
          }
          done(null, parsed);
        } catch (err) {
          done(Object.assign(new Error((err as Error).message), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
        }
      });
      scope.setNotFoundHandler((req, reply) =>
        reply.code(404).send(errorBody(`${req.method} ${req.url.split('?')[0]} is not an endpoint of this gateway (it serves ${SERVED_ENDPOINTS})`, 'invalid_request_error', 'unknown_url')),
      );
      // CORS: preflights answered without a key, each call checked against its project's allowed origins.
      registerCors(scope, runtime);
      // No route logLevel: a level of its own makes pino rebuild every log method of each request's
      // child logger (Fastify's request lines are off anyway; app.ts writes the one access line per call).
      scope.post('/chat/completions', { bodyLimit: config.maxBodyBytes }, (req, reply) => handleChatCompletion(deps, req, reply));
      scope.get('/models', async (req) => listModels(runtime, config, authorizationOf(req)));
      // Model ids contain slashes (provider/id): a wildcard.
      scope.get('/models/*', async (req) => getModel(runtime, config, authorizationOf(req), (req.params as { '*': string })['*']));
      registerEmbeddingsRoutes(scope, deps);
      await registerMessagesRoutes(scope, deps);
      registerResponsesRoutes(scope, deps);
    },
    { prefix: '/v1' },
  );

  return gateway;
}
