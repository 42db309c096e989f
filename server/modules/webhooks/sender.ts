/**
 * One delivery attempt: POST the body with its signature header, through a connection pool whose
 * connections are checked against the same private-address rule as organizations' upstreams
 * (gateway/upstream/guard.ts: the host is resolved, every address checked, the connection made to
 * the checked address). Redirects are not followed (a 3xx is a failed attempt).
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import type { GatewayConfig } from '../../config.js';
import { createUpstreamGuard } from '../gateway/upstream/guard.js';
import { WEBHOOK_SIGNATURE_HEADER } from '../../../shared/webhooks.js';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (docs/webhooks.md). */
export function webhookSignature(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export class WebhookSender {
  private readonly agent: Agent;

  constructor(
    gateway: GatewayConfig,
    private readonly timeoutMs: number,
  ) {
    // No origin is trusted for webhooks (the operator's upstream base URLs are not webhook hosts).
    const guard = createUpstreamGuard({
      ...gateway,
      openai: {},
      anthropic: {},
      google: {},
      vertexBaseUrl: undefined,
      bedrock: { ...gateway.bedrock, baseUrl: undefined, runtimeBaseUrl: undefined },
      azure: { ...gateway.azure, baseUrl: undefined },
      alibaba: {},
    });
    const connect = guard.connectFor('webhook:');
    this.agent = new Agent({ ...(connect ? { connect } : {}), connections: 4, keepAliveTimeout: 10_000 });
  }

  async post(url: string, secret: string, body: string, userAgent: string): Promise<AttemptResult> {
    const started = Date.now();
    const t = Math.floor(started / 1000);
    try {
      const res = await request(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'user-agent': userAgent, [WEBHOOK_SIGNATURE_HEADER]: webhookSignature(secret, body, t) },
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return { ok, status: res.statusCode, error: ok ? null : `the endpoint answered ${res.statusCode}`, durationMs: Date.now() - started };
    } catch (err) {
      const e = err as { message?: string; code?: string; cause?: { message?: string; code?: string } };
      const detail = e.cause?.message ?? e.message ?? String(err);
      const code = e.cause?.code ?? e.code;
      return { ok: false, status: null, error: (code && !detail.includes(code) ? `${code}: ${detail}` : detail).slice(0, 1000), durationMs: Date.now() - started };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
