/** Which addresses a tenant's upstream URL may reach (server/modules/gateway/upstream/guard.ts). */
import { describe, expect, it } from 'vitest';
import { refusedAddressReason, upstreamUrlProblem } from '../../server/modules/gateway/upstream/guard.js';

describe('refusedAddressReason', () => {
  it('refuses loopback, private, link-local, CGNAT, unspecified and other non-public IPv4', () => {
    for (const ip of ['127.0.0.1', '127.255.0.9', '10.0.0.5', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3', '192.0.0.170', '198.18.0.1', '224.0.0.1', '240.0.0.1', '255.255.255.255']) {
      expect(refusedAddressReason(ip), ip).not.toBeNull();
    }
    expect(refusedAddressReason('169.254.169.254')).toMatch(/link-local/);
    expect(refusedAddressReason('10.0.0.5')).toMatch(/private/);
  });

  it('refuses loopback, unique-local, link-local and IPv4-mapped/embedded forms of refused IPv4 in IPv6', () => {
    for (const ip of ['::1', '::', '[::1]', 'fc00::1', 'fd00:ec2::254', 'fe80::1', 'fe80::1%eth0', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::ffff:10.1.2.3', '::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '2001:db8::1', '100::1']) {
      expect(refusedAddressReason(ip), ip).not.toBeNull();
    }
    expect(refusedAddressReason('::ffff:169.254.169.254')).toMatch(/IPv6 form of a link-local/);
  });

  it('lets public addresses through', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '93.184.215.14', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2a00:1450:4001::200e']) {
      expect(refusedAddressReason(ip), ip).toBeNull();
    }
  });
});

describe('upstreamUrlProblem', () => {
  it('refuses non-http(s) schemes even when private upstreams are allowed', async () => {
    expect(await upstreamUrlProblem('file:///etc/passwd', true)).toMatch(/http\(s\)/);
    expect(await upstreamUrlProblem('gopher://example.com/', false)).toMatch(/http\(s\)/);
  });

  it('refuses literal and resolved private hosts, naming the address', async () => {
    expect(await upstreamUrlProblem('http://10.0.0.5:8080/v1', false)).toMatch(/10\.0\.0\.5 is a private/);
    expect(await upstreamUrlProblem('http://[::ffff:127.0.0.1]/v1', false)).toMatch(/loopback/);
    // WHATWG URL turns these into 127.0.0.1 before anyone resolves them.
    expect(await upstreamUrlProblem('http://2130706433/v1', false)).toMatch(/127\.0\.0\.1 is a loopback/);
    expect(await upstreamUrlProblem('http://0x7f.1/v1', false)).toMatch(/loopback/);
    expect(await upstreamUrlProblem('http://localhost:4010/v1', false)).toMatch(/localhost resolves to a loopback address \((127\.0\.0\.1|::1)\)/);
  });

  it('accepts public addresses, and anything http(s) when private upstreams are allowed', async () => {
    expect(await upstreamUrlProblem('https://93.184.215.14/v1', false)).toBeNull();
    expect(await upstreamUrlProblem('http://127.0.0.1:4010/v1', true)).toBeNull();
  });
});
