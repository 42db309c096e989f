/**
 * OpenTelemetry traces, sent over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; otherwise nothing: the SDK is imported only when
 * configured, and every hook below is one null check.
 *
 * Spans: one per gateway call (built from its usage record after the answer, with the call's own
 * start and end times), one per tRPC procedure, one per background job. They are root spans: the
 * process runs no context manager (that would cost every request an AsyncLocalStorage hop).
 */
import type { Attributes, Span, SpanKind, SpanStatusCode, Tracer } from '@opentelemetry/api';

/** @opentelemetry/api's SpanKind and SpanStatusCode values (the API module is not loaded when tracing is off). */
const KIND = { server: 1 as SpanKind.SERVER, consumer: 4 as SpanKind.CONSUMER };
const STATUS_ERROR = 2 as SpanStatusCode.ERROR;

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL (traces go to `<endpoint>/v1/traces`). */
  endpoint?: string;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full traces URL, used as is. */
  tracesEndpoint?: string;
  serviceName: string;
  /** How often batched spans are sent (ms). */
  exportIntervalMs?: number;
}

export interface Tracing {
  /** Sends every finished span now. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

interface Active {
  tracer: Tracer;
  flush(): Promise<void>;
}
let active: Active | null = null;

/** Starts exporting when an endpoint is configured; null (and nothing loaded) when not. */
export async function startTracing(opts: TracingOptions, log: { info(o: unknown, m?: string): void }): Promise<Tracing | null> {
  const url = opts.tracesEndpoint || (opts.endpoint ? `${opts.endpoint.replace(/\/+$/, '')}/v1/traces` : null);
  if (!url) return null;
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  // Headers (OTEL_EXPORTER_OTLP_HEADERS) and timeouts come from the standard variables, read by the exporter.
  const exporter = new OTLPTraceExporter({ url });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName, 'process.pid': process.pid }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: opts.exportIntervalMs ?? 5_000 })],
  });
  const mine: Active = { tracer: provider.getTracer('llm-gateway'), flush: () => provider.forceFlush() };
  active = mine;
  log.info({ url }, 'OpenTelemetry traces on');
  return {
    flush: mine.flush,
    async shutdown() {
      if (active === mine) active = null;
      await provider.shutdown();
    },
  };
}

/** Sends the finished spans now (tests). */
export async function flushTraces(): Promise<void> {
  await active?.flush();
}

/** What a gateway call's span is built from (a usage record). */
interface TracedCall {
  provider: string;
  model: string;
  status: number;
  latencyMs: number;
  ttftMs: number | null;
  cached: boolean;
  streamed: boolean;
  error: string | null;
}

/** A span for a gateway call that has just been answered, spanning its own duration. */
export function traceGatewayCall(r: TracedCall, endpoint: string): void {
  if (!active) return;
  const end = Date.now();
  const start = end - r.latencyMs;
  const span = active.tracer.startSpan(`gateway ${endpoint}`, {
    kind: KIND.server,
    startTime: start,
    attributes: {
      'gateway.endpoint': endpoint,
      'gen_ai.system': r.provider,
      'gen_ai.request.model': r.model,
      'http.response.status_code': r.status,
      'gateway.cached': r.cached,
      'gateway.streamed': r.streamed,
    },
  });
  if (r.ttftMs !== null) span.addEvent('first token', start + r.ttftMs);
  if (r.status >= 500) span.setStatus({ code: STATUS_ERROR, message: r.error ?? `HTTP ${r.status}` });
  else if (r.error) span.setAttribute('gateway.error', r.error);
  span.end(end);
}

/** An operation's span, or null when tracing is off. */
export interface OperationSpan {
  /** Ends the span; `error` marks it failed. */
  end(error?: string): void;
}

function startOperation(name: string, kind: SpanKind, attributes: Attributes): OperationSpan | null {
  if (!active) return null;
  const span: Span = active.tracer.startSpan(name, { kind, attributes });
  return {
    end(error) {
      if (error) span.setStatus({ code: STATUS_ERROR, message: error });
      span.end();
    },
  };
}

export function traceProcedure(path: string, type: string): OperationSpan | null {
  return startOperation(`trpc ${path}`, KIND.server, { 'rpc.system': 'trpc', 'rpc.method': path, 'trpc.type': type });
}

export function traceJob(queue: string): OperationSpan | null {
  return startOperation(`job ${queue}`, KIND.consumer, { 'messaging.system': 'pg-boss', 'messaging.destination.name': queue });
}
