/**
 * The gateway's HTTP surface, registered by one call from buildApp: POST /v1/chat/completions and
 * GET /v1/models under /v1, with OpenAI-shaped errors (also for bad JSON, oversized bodies and
 * unknown /v1 paths), plus the metering pipeline and its drain on close.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Services } from '../../trpc/context.js';
import { UsageEvents } from '../usage/live.js';
import { UsageMeter } from '../usage/meter.js';
import { handleChatCompletion } from './completions.js';
import { errorBody, GatewayError } from './errors.js';
import { listModels } from './models.js';
import { GatewayRuntime } from './runtime.js';

export interface Gateway {
  runtime: GatewayRuntime;
  meter: UsageMeter;
  events: UsageEvents;
  /** Drains every pending usage record and stops the gateway's connections (after app.close()). */
  close(): Promise<void>;
}

const gateways = new WeakMap<Services, Gateway>();
/** The gateway of an app instance (tests and benches look at its meter). */
export const gatewayOf = (services: Services) => gateways.get(services);

export async function registerGateway(app: FastifyInstance, services: Services, databaseUrl: string): Promise<Gateway> {
  const config = services.config.gateway;
  const runtime = new GatewayRuntime(services, databaseUrl);
  await runtime.start();
  const events = new UsageEvents(services);
  const meter = new UsageMeter(services, {
    windowMs: config.batchWindowMs,
    databaseUrl,
    onCommitted: (records) => events.add(records),
    onBalance: (orgId, credits) => runtime.setBalance(orgId, credits),
  });
  const deps = { runtime, meter, config, log: services.log };

  await app.register(
    async (scope) => {
      scope.setErrorHandler((err: FastifyError | GatewayError, _req, reply) => {
        if (err instanceof GatewayError) return reply.code(err.status).headers(err.headers).send(err.toJSON());
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
          done(null, JSON.parse(body as string));
        } catch (err) {
          done(Object.assign(new Error((err as Error).message), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
        }
      });
      scope.setNotFoundHandler((req, reply) =>
        reply.code(404).send(errorBody(`${req.method} ${req.url.split('?')[0]} is not an endpoint of this gateway (it serves POST /v1/chat/completions and GET /v1/models)`, 'invalid_request_error', 'unknown_url')),
      );
      // Per-request logs would cost more than the call itself; the request log table is the record.
      scope.post('/chat/completions', { bodyLimit: config.maxBodyBytes, logLevel: 'warn' }, (req, reply) => handleChatCompletion(deps, req, reply));
      scope.get('/models', { logLevel: 'warn' }, async (req) => listModels(runtime, config, req.headers.authorization));
    },
    { prefix: '/v1' },
  );

  const gateway: Gateway = {
    runtime,
    meter,
    events,
    async close() {
      await meter.close();
      await events.close();
      await runtime.stop();
    },
  };
  gateways.set(services, gateway);
  return gateway;
}
