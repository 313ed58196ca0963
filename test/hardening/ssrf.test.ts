import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostAddress, refusedAddressReason } from '../../dist/src/net/address-policy.js';
import { safeFetchImage, type HostResolver } from '../../dist/src/net/safe-fetch.js';
import { fetchImageBytes } from '../../dist/src/image/fetch-image.js';
import { pngBytes, startLoopbackServer, type LoopbackServer } from './helpers.js';

// Every URL here must be refused before any connection is made; the resolver throws if asked for a name the test did
// not expect, and a loopback server counts what reached it.
const PRIVATE_LITERALS = [
  'http://127.0.0.1/a.png',
  'https://127.0.0.1/a.png',
  'https://localhost.localdomain./a.png', // resolver below maps it to 127.0.0.1
  'https://127.255.255.254/a.png',
  'https://10.0.0.1/a.png',
  'https://172.16.5.4/a.png',
  'https://192.168.1.1/a.png',
  'https://169.254.169.254/latest/meta-data/',
  'https://100.64.0.1/a.png', // carrier-grade NAT
  'https://0.0.0.0/a.png',
  'https://0/a.png', // "0" is 0.0.0.0
  'https://224.0.0.1/a.png',
  'https://255.255.255.255/a.png',
  'https://198.18.0.1/a.png', // benchmarking
  'https://192.0.2.1/a.png', // documentation
  'https://2130706433/a.png', // decimal 127.0.0.1
  'https://0x7f000001/a.png', // hex
  'https://0x7f.0x0.0x0.0x1/a.png', // hex per part
  'https://017700000001/a.png', // octal
  'https://0177.0.0.01/a.png', // octal per part
  'https://127.1/a.png', // short form
  'https://127.0.1/a.png',
  'https://0xA9FEA9FE/a.png', // 169.254.169.254 in hex
  'https://2852039166/a.png', // 169.254.169.254 in decimal
  'https://[::1]/a.png',
  'https://[::]/a.png',
  'https://[0:0:0:0:0:0:0:1]/a.png',
  'https://[::ffff:127.0.0.1]/a.png', // IPv4-mapped
  'https://[::ffff:7f00:1]/a.png',
  'https://[::ffff:169.254.169.254]/a.png',
  'https://[::ffff:10.0.0.1]/a.png',
  'https://[fe80::1]/a.png', // link-local
  'https://[fc00::1]/a.png', // unique local
  'https://[fd12:3456::1]/a.png',
  'https://[ff02::1]/a.png', // multicast
  'https://[64:ff9b::7f00:1]/a.png', // NAT64 of 127.0.0.1
  'https://[2002:7f00:1::1]/a.png', // 6to4 of 127.0.0.1
  'https://[2001:0::1]/a.png', // Teredo
  'https://[::127.0.0.1]/a.png', // IPv4-compatible
];

const NAMES_TO_PRIVATE: Record<string, string[]> = {
  'localhost.localdomain': ['127.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'rebind.test': ['93.184.216.34', '10.1.2.3'], // one public, one private: refused
  'v6-loopback.test': ['::1'],
  'mapped.test': ['::ffff:192.168.0.1'],
  'odd-notation.test': ['0x7f.1'], // a resolver that answers with a non-canonical notation is not trusted
};

function resolver(record: string[]): HostResolver {
  return async (hostname) => {
    record.push(hostname);
    const addresses = NAMES_TO_PRIVATE[hostname];
    if (!addresses) throw Object.assign(new Error(`unexpected lookup of ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

describe('the SSRF-safe image fetcher', () => {
  let server: LoopbackServer;
  let image: Buffer;

  beforeAll(async () => {
    image = await pngBytes();
    server = await startLoopbackServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://x');
      if (url.pathname === '/image.png') return void response.writeHead(200, { 'content-type': 'image/png' }).end(image);
      if (url.pathname === '/redirect') return void response.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
      if (url.pathname === '/html') return void response.writeHead(200, { 'content-type': 'image/png' }).end('<html><body>' + 'x'.repeat(100) + '</body></html>');
      if (url.pathname === '/huge') {
        response.writeHead(200, { 'content-type': 'image/png' });
        response.write(image.subarray(0, 64));
        // No content-length: the cap must hold while streaming.
        const chunk = Buffer.alloc(64 * 1024, 1);
        for (let index = 0; index < 64; index += 1) response.write(chunk);
        return void response.end();
      }
      if (url.pathname === '/gzip') return void response.writeHead(200, { 'content-encoding': 'gzip' }).end(Buffer.alloc(100));
      if (url.pathname === '/slow') return void response.writeHead(200, { 'content-type': 'image/png' }).write(image.subarray(0, 40)); // never ends
      response.writeHead(404).end();
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should refuse every private, loopback, link-local, metadata, multicast and odd-notation address', async () => {
    const looked: string[] = [];
    const outcomes: string[] = [];
    for (const url of PRIVATE_LITERALS) {
      const error = await safeFetchImage(new URL(url), { maxBytes: 1 << 20, allowHttp: true, resolve: resolver(looked) }).then(
        () => undefined,
        (caught: unknown) => caught as { reason?: string; message: string },
      );
      expect(error?.reason, url).toBe('url_refused');
      outcomes.push(`${url} -> ${error?.message}`);
    }
    expect(outcomes).toHaveLength(PRIVATE_LITERALS.length);
    expect(PRIVATE_LITERALS.length).toBeGreaterThanOrEqual(35);
    // Only the one name among them went to the resolver: literals never need DNS.
    expect(looked).toEqual(['localhost.localdomain']);
  });

  it('should refuse DNS names that resolve to a private address, even when another of their addresses is public', async () => {
    for (const name of Object.keys(NAMES_TO_PRIVATE)) {
      const error = await safeFetchImage(new URL(`https://${name}/a.png`), { maxBytes: 1 << 20, resolve: resolver([]) }).catch((caught: unknown) => caught as { reason?: string; message: string });
      expect((error as { reason?: string }).reason, name).toBe('url_refused');
      expect((error as Error).message).toContain(`${name} resolves to it`);
    }
  });

  it('should classify addresses by range, judging IPv4-mapped IPv6 by the IPv4 address inside', () => {
    expect(refusedAddressReason('169.254.169.254')).toBe('linkLocal');
    expect(refusedAddressReason('::ffff:7f00:1')).toBe('loopback');
    expect(refusedAddressReason('100.64.1.1')).toBe('carrierGradeNat');
    expect(refusedAddressReason('fe80::1%eth0')).toBe('scoped');
    expect(refusedAddressReason('0x7f.1')).toBe('not-an-ip-address');
    expect(refusedAddressReason('93.184.216.34')).toBeUndefined();
    expect(refusedAddressReason('2606:4700::1111')).toBeUndefined();
    expect(hostAddress(new URL('http://0x7f.1/').hostname)).toBe('127.0.0.1');
    expect(hostAddress('[::1]')).toBe('::1');
    expect(hostAddress('example.com')).toBeUndefined();
  });

  it('should refuse plain http unless allowed, and hosts off the allowlist, before resolving anything', async () => {
    const looked: string[] = [];
    await expect(safeFetchImage(new URL('http://images.example/a.png'), { maxBytes: 1 << 20, resolve: resolver(looked) })).rejects.toMatchObject({ reason: 'url_refused', message: expect.stringContaining('only https') });
    await expect(safeFetchImage(new URL('https://evil.example/a.png'), { maxBytes: 1 << 20, allowedHosts: ['images.example', '*.cdn.example'], resolve: resolver(looked) })).rejects.toMatchObject({
      reason: 'url_refused',
      message: expect.stringContaining('allowlist'),
    });
    await expect(safeFetchImage(new URL('https://user:pw@images.example/a.png'), { maxBytes: 1 << 20, resolve: resolver(looked) })).rejects.toMatchObject({ reason: 'url_refused' });
    await expect(safeFetchImage(new URL('file:///etc/passwd'), { maxBytes: 1 << 20, resolve: resolver(looked) })).rejects.toMatchObject({ reason: 'url_refused' });
    expect(looked).toEqual([]);
  });

  it('should fetch from the one loopback origin a test exempts, and from nowhere else on loopback', async () => {
    const bytes = await safeFetchImage(new URL(`${server.origin}/image.png`), { maxBytes: 1 << 20, unsafeAllowOrigins: [server.origin] });
    expect(Buffer.from(bytes).equals(image)).toBe(true);
    const otherPort = server.origin.replace(/:(\d+)$/, (_, port: string) => `:${Number(port) === 65535 ? 1 : Number(port) + 1}`);
    await expect(safeFetchImage(new URL(`${otherPort}/image.png`), { maxBytes: 1 << 20, allowHttp: true, unsafeAllowOrigins: [server.origin] })).rejects.toMatchObject({ reason: 'url_refused' });
    // Without the exemption the same origin is refused: it is loopback.
    const before = server.hits.length;
    await expect(safeFetchImage(new URL(`${server.origin}/image.png`), { maxBytes: 1 << 20, allowHttp: true })).rejects.toMatchObject({ reason: 'url_refused' });
    expect(server.hits.length).toBe(before);
  });

  it('should re-check every redirect hop and refuse one that leads to a private address or another scheme', async () => {
    const options = { maxBytes: 1 << 20, unsafeAllowOrigins: [server.origin] };
    // A redirect within the exempt origin is followed.
    expect((await safeFetchImage(new URL(`${server.origin}/redirect?to=/image.png`), options)).byteLength).toBe(image.byteLength);
    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://[::1]:9/', 'http://127.0.0.1:1/x', 'http://2130706433/', 'file:///etc/passwd', 'gopher://127.0.0.1:25/']) {
      await expect(safeFetchImage(new URL(`${server.origin}/redirect?to=${encodeURIComponent(target)}`), options), target).rejects.toMatchObject({ reason: 'url_refused' });
    }
    // A public name that redirects to a private one: refused at the second hop, after DNS.
    const looked: string[] = [];
    await expect(safeFetchImage(new URL(`${server.origin}/redirect?to=${encodeURIComponent('https://metadata.test/')}`), { ...options, resolve: resolver(looked) })).rejects.toMatchObject({ reason: 'url_refused' });
    expect(looked).toEqual(['metadata.test']);
    await expect(safeFetchImage(new URL(`${server.origin}/redirect?to=/image.png`), { ...options, maxRedirects: 0 })).rejects.toMatchObject({ reason: 'url_refused', message: expect.stringContaining('redirects') });
    await expect(safeFetchImage(new URL(`${server.origin}/redirect?to=${encodeURIComponent('/redirect?to=/redirect%3Fto%3D/image.png')}`), { ...options, maxRedirects: 1 })).rejects.toMatchObject({ reason: 'fetch_failed', message: expect.stringContaining('more than 1 times') });
  });

  it('should cap the body while it streams, refuse compressed bodies and non-images from their first bytes', async () => {
    const options = { maxBytes: 256 * 1024, unsafeAllowOrigins: [server.origin] };
    await expect(safeFetchImage(new URL(`${server.origin}/huge`), options)).rejects.toMatchObject({ reason: 'too_many_bytes' });
    await expect(safeFetchImage(new URL(`${server.origin}/html`), options)).rejects.toMatchObject({ reason: 'unsupported_format', message: expect.stringContaining('HTML') });
    await expect(safeFetchImage(new URL(`${server.origin}/gzip`), options)).rejects.toMatchObject({ reason: 'fetch_failed', message: expect.stringContaining('compressed') });
    await expect(safeFetchImage(new URL(`${server.origin}/missing`), options)).rejects.toMatchObject({ reason: 'fetch_failed', message: expect.stringContaining('404') });
  });

  it('should give up on a download that outlasts its total timeout', async () => {
    await expect(safeFetchImage(new URL(`${server.origin}/slow`), { maxBytes: 1 << 20, timeoutMs: 300, unsafeAllowOrigins: [server.origin] })).rejects.toMatchObject({
      reason: 'fetch_failed',
      message: expect.stringContaining('timeoutMs'),
    });
  });

  it('should give up on a connection that does not open within its connect timeout', async () => {
    // A TCP listener that accepts and never speaks: the TLS handshake, part of opening an https connection, never
    // completes, which is what a host that drops packets looks like to the connect timer.
    const silent = createNetServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      await expect(safeFetchImage(new URL(`${origin}/a.png`), { maxBytes: 1 << 20, connectTimeoutMs: 200, timeoutMs: 30_000, unsafeAllowOrigins: [origin] })).rejects.toMatchObject({
        reason: 'fetch_failed',
        message: expect.stringContaining('connectTimeoutMs (200 ms)'),
      });
    } finally {
      silent.close();
    }
  });

  it("should let the library loader fetch its caller's own private URLs, and refuse them under a strict policy", async () => {
    expect((await fetchImageBytes(new URL(`${server.origin}/image.png`), { maxBytes: 1 << 20, timeoutMs: 1000 })).byteLength).toBe(image.byteLength);
    await expect(fetchImageBytes(new URL('http://169.254.169.254/latest/meta-data/'), { maxBytes: 1 << 20, timeoutMs: 1000, policy: { allowPrivateAddresses: false } })).rejects.toMatchObject({ reason: 'url_refused' });
  });
});
