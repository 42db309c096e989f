/**
 * Claude on AWS Bedrock through InvokeModel (`/model/{id}/invoke`) and
 * InvokeModelWithResponseStream (`/model/{id}/invoke-with-response-stream`), authenticated with a
 * Bedrock API key (`Authorization: Bearer`). The body is Anthropic's Messages request without
 * `model` and `stream` (both are in the URL) and with Bedrock's `anthropic_version`; the answer is
 * Anthropic's message, and the stream is Anthropic's events, each base64-encoded in the `bytes` of
 * an AWS event stream `chunk` message. The Anthropic translation both ways is shared.
 */
import aws4 from 'aws4';
import { splitBedrockProfile } from '../../../../shared/models.js';
import { upstreamFailed } from '../errors.js';
import { anthropicAdapter, AnthropicStreamTranslator, toAnthropicRequest } from './anthropic.js';
import { EventStreamDecoder, EventStreamError } from './eventstream.js';
import type { ChatChunk, ProtocolAdapter } from './types.js';

export const BEDROCK_ANTHROPIC_VERSION = 'bedrock-2023-05-31';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/**
 * An IAM access key pasted as `ACCESS_KEY_ID:SECRET_ACCESS_KEY` (or `…:SESSION_TOKEN` for temporary
 * credentials), or null for anything else (a Bedrock API key, sent as a bearer token).
 */
export function iamCredentials(secret: string): AwsCredentials | null {
  const parts = secret.trim().split(':');
  if (parts.length < 2 || parts.length > 3 || !/^(AKIA|ASIA)[A-Z0-9]{12,124}$/.test(parts[0]!) || !parts[1]) return null;
  return { accessKeyId: parts[0]!, secretAccessKey: parts[1], ...(parts[2] ? { sessionToken: parts[2] } : {}) };
}

/**
 * Signs one InvokeModel call with SigV4 (aws4): the exact bytes sent, their URL and headers, now.
 * Returns the headers to send (the given ones plus Host, X-Amz-Date, the token and Authorization).
 */
export function signBedrockCall(url: string, headers: Record<string, string>, payload: string, creds: AwsCredentials, region: string): Record<string, string> {
  const u = new URL(url);
  const request = {
    host: u.host,
    path: `${u.pathname}${u.search}`,
    method: 'POST',
    service: 'bedrock',
    region,
    // content-type is signed, so it goes in here exactly as postJson will send it.
    headers: { ...headers, 'content-type': 'application/json' } as Record<string, string>,
    body: payload,
  };
  aws4.sign(request, creds);
  return request.headers;
}

/** Models Bedrock serves through the Anthropic protocol (the rest go to its OpenAI-compatible endpoint). */
export const isBedrockAnthropic = (model: string) => splitBedrockProfile(model).model.startsWith('anthropic.');

/** The id InvokeModel is called with: the model as asked when it names a profile, else through `profile`. */
export function bedrockModelId(model: string, profile: string): string {
  return splitBedrockProfile(model).profile || profile === 'none' ? model : `${profile}.${model}`;
}

function decodeChunk(payload: Buffer): Record<string, unknown> {
  try {
    const wrapper = JSON.parse(payload.toString('utf8')) as { bytes?: unknown };
    if (typeof wrapper.bytes !== 'string') throw new Error('no bytes');
    return JSON.parse(Buffer.from(wrapper.bytes, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw upstreamFailed('bedrock sent a malformed stream event', 'upstream_malformed');
  }
}

export const bedrockAnthropicAdapter: ProtocolAdapter = {
  prepare(body, upstreamModel, stream, maxOutputTokens) {
    const request = toAnthropicRequest(body, upstreamModel, stream, maxOutputTokens);
    delete request.model;
    delete request.stream;
    return { payload: JSON.stringify({ anthropic_version: BEDROCK_ANTHROPIC_VERSION, ...request }) };
  },
  parseResponse(text) {
    return anthropicAdapter.parseResponse(text);
  },
  async *streamChunks(body): AsyncGenerator<ChatChunk> {
    const translator = new AnthropicStreamTranslator();
    for await (const event of bedrockAnthropicEvents(body)) {
      yield* translator.translate(event);
      if (translator.finished) return;
    }
    if (!translator.finished) throw upstreamFailed('bedrock ended the stream early (no message_stop)', 'upstream_truncated');
  },
};

/**
 * The Anthropic stream events inside InvokeModelWithResponseStream's AWS event stream frames, in
 * order; an exception frame or broken framing throws (a GatewayError). Shared by the chat adapter
 * and /v1/messages (which writes the events back out as Anthropic's SSE).
 */
export async function* bedrockAnthropicEvents(body: AsyncIterable<Buffer>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new EventStreamDecoder();
  for await (const bytes of body) {
    let messages;
    try {
      messages = decoder.push(bytes);
    } catch (err) {
      if (err instanceof EventStreamError) throw upstreamFailed(`bedrock sent a broken event stream: ${err.message}`, 'upstream_malformed');
      throw err;
    }
    for (const message of messages) {
      const type = message.headers[':message-type'];
      if (type === 'exception' || type === 'error') {
        const kind = String(message.headers[':exception-type'] ?? message.headers[':error-code'] ?? 'error');
        let detail: string;
        try {
          detail = String((JSON.parse(message.payload.toString('utf8')) as { message?: unknown }).message ?? '');
        } catch {
          detail = message.payload.toString('utf8').slice(0, 200);
        }
        throw upstreamFailed(`bedrock failed mid-stream: ${kind}${detail ? `: ${detail}` : ''}`);
      }
      if (message.headers[':event-type'] !== 'chunk') continue;
      yield decodeChunk(message.payload);
    }
  }
}
