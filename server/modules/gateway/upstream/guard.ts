/**
 * Where an organization's upstream may point. A custom provider's base URL is chosen by a tenant,
 * and the gateway calls it from inside the operator's network: without a check, any organization
 * could reach the operator's loopback services, private network and cloud metadata endpoints
 * (169.254.169.254) through the gateway (server-side request forgery).
 *
 * Checked twice: when the URL is saved (a clear BAD_REQUEST), and on every new connection, where
 * the host is resolved, every address checked, and the connection made to the checked address
 * (so a DNS answer that changes after the save, or between check and connect, gets nowhere).
 * GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true lifts the address rule (tests, the demo, on-premise models);
 * the operator's own *_BASE_URL settings are trusted as they are.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { GatewayConfig } from '../../../config.js';

/** Why an address may not be an upstream, or null when it may. */
export function refusedAddressReason(address: string): string | null {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(ip);
  if (family === 4) return ipv4Reason(ipv4Bytes(ip));
  if (family === 6) return ipv6Reason(ipv6Bytes(ip));
  return 'not an IP address';
}

function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

function ipv4Reason([a, b, c]: number[]): string | null {
  if (a === undefined || b === undefined || c === undefined) return 'not an IP address';
  if (a === 0) return 'an unspecified ("this network") address';
  if (a === 127) return 'a loopback address';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'a private (RFC 1918) address';
  if (a === 169 && b === 254) return 'a link-local address (cloud metadata lives here)';
  if (a === 100 && b >= 64 && b <= 127) return 'a carrier-grade NAT (shared) address';
  if (a === 192 && b === 0 && c === 0) return 'an IETF protocol address';
  if ((a === 192 && b === 0 && c === 2) || (a === 198 && b === 51 && c === 100) || (a === 203 && b === 0 && c === 113)) return 'a documentation address';
  if (a === 198 && (b === 18 || b === 19)) return 'a benchmarking address';
  if (a >= 224 && a <= 239) return 'a multicast address';
  if (a >= 240) return 'a reserved or broadcast address';
  return null;
}

/** The 16 bytes of an IPv6 address (an embedded dotted IPv4 tail included). */
function ipv6Bytes(ip: string): number[] {
  let text = ip.split('%')[0]!.toLowerCase();
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '').map((g) => parseInt(g, 16)) : []);
  const before = groups(head);
  const after = groups(rest);
  const words = rest === undefined ? before : [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function ipv6Reason(bytes: number[]): string | null {
  const zeroUpTo = (n: number) => bytes.slice(0, n).every((b) => b === 0);
  const embedded = (reason: string | null) => (reason ? `${reason.replace(/^an? /, 'an IPv6 form of a ')}` : null);
  if (zeroUpTo(16)) return 'an unspecified address';
  if (zeroUpTo(15) && bytes[15] === 1) return 'a loopback address';
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible), 64:ff9b::a.b.c.d (NAT64): the IPv4 address decides.
  if (zeroUpTo(10) && bytes[10] === 0xff && bytes[11] === 0xff) return embedded(ipv4Reason(bytes.slice(12)));
  if (zeroUpTo(12)) return embedded(ipv4Reason(bytes.slice(12)));
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && bytes.slice(4, 12).every((b) => b === 0)) return embedded(ipv4Reason(bytes.slice(12)));
  // 6to4 (2002:AABB:CCDD::/48) carries an IPv4 address too.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return embedded(ipv4Reason(bytes.slice(2, 6)));
  if ((bytes[0]! & 0xfe) === 0xfc) return 'a unique-local (private) IPv6 address';
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80) return 'a link-local IPv6 address';
  if (bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0xc0) return 'a site-local IPv6 address';
  if (bytes[0] === 0xff) return 'a multicast address';
  if (bytes[0] === 0x01 && bytes[1] === 0x00 && bytes.slice(2, 8).every((b) => b === 0)) return 'a discard-only address';
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0x0d && bytes[3] === 0xb8) return 'a documentation address';
  return null;
}

/** Refused: a URL, or a connection, to an address no tenant may reach. */
export class UpstreamAddressRefused extends Error {
  readonly code = 'UPSTREAM_ADDRESS_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(
      host === address
        ? `${address} is ${reason}; this gateway does not call private addresses (the operator can allow them with GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true)`
        : `${host} resolves to ${reason} (${address}); this gateway does not call private addresses (the operator can allow them with GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true)`,
    );
    this.name = 'UpstreamAddressRefused';
  }
}

const hostOf = (hostname: string) => (hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname);

/** Every address `hostname` resolves to, each one checked: the first refused one throws. */
async function resolveChecked(hostname: string): Promise<LookupAddress[]> {
  const host = hostOf(hostname);
  const addresses: LookupAddress[] = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await new Promise<LookupAddress[]>((resolve, reject) => dnsLookup(host, { all: true }, (err, found) => (err ? reject(err) : resolve(found))));
  for (const { address } of addresses) {
    const reason = refusedAddressReason(address);
    if (reason) throw new UpstreamAddressRefused(host, address, reason);
  }
  return addresses;
}

/**
 * The save-time check of a tenant's base URL: http(s) only, and (unless private upstreams are
 * allowed) a host that resolves, with every address public. Returns a sentence for the user, or null.
 * Resolving is a network call: run it before the command's transaction, never inside.
 */
export async function upstreamUrlProblem(url: string, allowPrivate: boolean): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'base URL is not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `base URL must be http(s), not ${parsed.protocol.replace(/:$/, '')}`;
  if (allowPrivate) return null;
  try {
    await resolveChecked(parsed.hostname);
    return null;
  } catch (err) {
    if (err instanceof UpstreamAddressRefused) return `base URL ${err.message}`;
    const code = (err as { code?: string }).code ?? 'error';
    return `base URL's host ${parsed.hostname} could not be resolved (${code}); give a host that resolves to a public address`;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for net.connect/tls.connect that answers only with checked addresses. */
function checkedLookup(hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void {
  resolveChecked(hostname).then(
    (addresses) => {
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      if (wanted.length === 0) return callback(Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }), []);
      if (options.all) callback(null, wanted);
      else callback(null, wanted[0]!.address, wanted[0]!.family);
    },
    (err: NodeJS.ErrnoException) => callback(err, []),
  );
}

export type UpstreamConnector = buildConnector.connector;

/**
 * What each upstream connection pool is built with: `connectFor(origin)` is the undici `connect`
 * option for that origin (undefined: undici's own connector). Trusted origins (the operator's
 * configured base URLs) and GATEWAY_ALLOW_PRIVATE_UPSTREAMS=true connect unchecked.
 */
export interface UpstreamGuard {
  connectFor(origin: string): UpstreamConnector | undefined;
}

/** The origins of every upstream base URL the operator configured in the environment. */
export function operatorOrigins(config: GatewayConfig): Set<string> {
  const urls = [
    config.openai.baseUrl,
    config.anthropic.baseUrl,
    config.google.baseUrl,
    config.vertexBaseUrl,
    config.bedrock.baseUrl,
    config.bedrock.runtimeBaseUrl,
    config.azure.baseUrl,
    config.alibaba.baseUrl,
  ];
  const origins = new Set<string>();
  for (const url of urls) {
    if (!url) continue;
    try {
      origins.add(new URL(url).origin);
    } catch {
      // config.ts validated these as URLs; nothing to trust otherwise.
    }
  }
  return origins;
}

export function createUpstreamGuard(config: Pick<GatewayConfig, 'allowPrivateUpstreams'> & Parameters<typeof operatorOrigins>[0]): UpstreamGuard {
  if (config.allowPrivateUpstreams) return { connectFor: () => undefined };
  const trusted = operatorOrigins(config);
  let connector: UpstreamConnector | undefined;
  const checked: UpstreamConnector = (options, callback) => {
    const host = hostOf(options.hostname);
    // net.connect skips `lookup` for an IP literal: check it here.
    if (isIP(host)) {
      const reason = refusedAddressReason(host);
      if (reason) return callback(new UpstreamAddressRefused(host, host, reason), null);
    }
    connector ??= buildConnector({ lookup: checkedLookup as never });
    connector(options, callback);
  };
  return { connectFor: (origin) => (trusted.has(origin) ? undefined : checked) };
}
