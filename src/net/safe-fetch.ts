import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';

import { InvalidImageError, InvalidOptionError } from '../errors/index.js';
import { describeRefusedBytes, sniffFormat } from '../image/sniff-format.js';
import { hostAddress, refusedAddressReason } from './address-policy.js';

/** One address a name resolves to, as `dns.promises.lookup(name, { all: true })` returns it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to all its addresses. Injected in tests so that no real DNS is asked. */
export type HostResolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Where image URLs may lead. Every field has a safe default. */
export interface UrlPolicy {
  /** Accept `http:` as well as `https:`. Default false. */
  allowHttp?: boolean;
  /** Host names (exact, or `*.example.com` for any subdomain) that may be fetched; empty or absent: any public host. */
  allowedHosts?: readonly string[];
  /** Redirects followed, each re-checked like the first URL; 0 refuses every redirect. Default 3. */
  maxRedirects?: number;
  /** Limit for opening the TCP (and TLS) connection of one hop. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Limit for the whole download, redirects and body included. Default 15000 ms. */
  timeoutMs?: number;
  /** Default: the system resolver (`dns.promises.lookup` with `all: true`). */
  resolve?: HostResolver;
  /**
   * Connect to private, loopback and link-local addresses too. Default false. Only for URLs the caller itself chose
   * (the library's `loadImage` on a trusted machine), never for URLs from a request.
   */
  allowPrivateAddresses?: boolean;
  /** The option name timeouts are reported under, so that a message names what the caller can change. Default `timeoutMs`. */
  timeoutOptionName?: string;
  /**
   * TESTS ONLY. Origins (`http://127.0.0.1:43210`) exempt from the address check, so that a test can serve images and
   * redirects from loopback. Never set it in production: it re-opens exactly the hole this module closes.
   */
  unsafeAllowOrigins?: readonly string[];
}

export interface SafeFetchOptions extends UrlPolicy {
  /** The download is cut off, and refused, as soon as the body passes this many bytes. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** Every default of the SSRF-safe fetcher, in one place. */
export const SAFE_FETCH_DEFAULTS = {
  allowHttp: false,
  maxRedirects: 3,
  connectTimeoutMs: 5_000,
  timeoutMs: 15_000,
} as const;

const systemResolver: HostResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

function refused(message: string, hint?: string): InvalidImageError {
  return new InvalidImageError('url_refused', message, hint ? { hint } : {});
}

// Host names compare case-insensitively and without the trailing dot that makes a name fully qualified.
function normaliseHost(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}

function hostAllowed(hostname: string, allowed: readonly string[]): boolean {
  const host = normaliseHost(hostname);
  return allowed.some((entry) => {
    const pattern = normaliseHost(entry);
    return pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
  });
}

interface Hop {
  url: URL;
  /** The vetted address the connection is pinned to. */
  address: string;
  family: 4 | 6;
}

/** Checks one URL (the first, or a redirect's target) and resolves it to the one address it may connect to. */
async function vet(url: URL, policy: UrlPolicy & { allowHttp: boolean }, resolve: HostResolver): Promise<Hop> {
  const exempt = (policy.unsafeAllowOrigins?.includes(url.origin) ?? false) || policy.allowPrivateAddresses === true;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && (policy.allowHttp || exempt))) {
    throw refused(
      `Refusing to fetch ${url.protocol} URL ${url.href}: only https${policy.allowHttp ? ' and http' : ''} image URLs are accepted.`,
      url.protocol === 'http:' ? 'Serve the image over https, or enable plain http in the server options.' : undefined,
    );
  }
  // Credentials in a URL would be sent to whatever host the URL names; nothing legitimate needs them here.
  if (url.username || url.password) throw refused(`Refusing to fetch ${url.origin}: URLs with credentials are not accepted.`);
  if (policy.allowedHosts && policy.allowedHosts.length > 0 && !hostAllowed(url.hostname, policy.allowedHosts)) {
    throw refused(`Refusing to fetch from ${url.hostname}: it is not on the image host allowlist.`);
  }
  const literal = hostAddress(url.hostname);
  let candidates: readonly ResolvedAddress[];
  if (literal !== undefined) {
    candidates = [{ address: literal, family: literal.includes(':') ? 6 : 4 }];
  } else {
    try {
      candidates = await resolve(normaliseHost(url.hostname));
    } catch (error) {
      throw new InvalidImageError('fetch_failed', `The image host ${url.hostname} could not be resolved (${(error as NodeJS.ErrnoException)?.code ?? (error as Error)?.message}).`, { cause: error });
    }
    if (candidates.length === 0) throw new InvalidImageError('fetch_failed', `The image host ${url.hostname} resolved to no address.`);
  }
  if (!exempt) {
    // Every address must pass, not just the first: a name that also resolves to a private address is a rebinding
    // attempt, and which address a client library would pick is not ours to guess.
    for (const candidate of candidates) {
      const reason = refusedAddressReason(candidate.address);
      if (reason !== undefined) {
        const via = literal !== undefined ? '' : ` (${url.hostname} resolves to it)`;
        throw refused(`Refusing to fetch ${url.origin}: ${candidate.address}${via} is a ${reason} address, not a public one.`);
      }
    }
  }
  const chosen = candidates[0]!;
  return { url, address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

interface HopResponse {
  response: IncomingMessage;
  socket: Socket;
}

/** Opens one hop, connected to the vetted address and nothing else, with its own connect timeout. */
function openHop(hop: Hop, connectTimeoutMs: number, signal: AbortSignal): Promise<HopResponse> {
  // The connection uses this address whatever the name would resolve to now: no second lookup, no rebinding.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as unknown as (error: null, addresses: ResolvedAddress[]) => void)(null, [{ address: hop.address, family: hop.family }]);
    else callback(null, hop.address, hop.family);
  };
  const { url } = hop;
  const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)({
    protocol: url.protocol,
    hostname: hostAddress(url.hostname) ?? url.hostname,
    port: url.port || undefined,
    path: `${url.pathname}${url.search}`,
    method: 'GET',
    // One connection per hop, never reused: a pooled socket could belong to another host's vetting.
    agent: false,
    lookup: pinned,
    // Certificates are checked against the name in the URL, as a browser would.
    ...(url.protocol === 'https:' && hostAddress(url.hostname) === undefined ? { servername: url.hostname } : {}),
    // Compressed bodies are refused below: the byte cap must count what the decoder would see.
    headers: { accept: 'image/*', 'accept-encoding': 'identity', 'user-agent': 'vqa-llm-image-fetcher' },
    signal,
  });
  return new Promise<HopResponse>((resolve, reject) => {
    const connectTimer = setTimeout(() => {
      request.destroy(new InvalidImageError('fetch_failed', `Connecting to ${url.host} took longer than connectTimeoutMs (${connectTimeoutMs} ms).`));
    }, connectTimeoutMs);
    request.once('socket', (socket: Socket) => {
      const connected = (): void => {
        clearTimeout(connectTimer);
        // Belt and braces: the socket must be where the vetting said, whatever an agent or proxy setting did.
        if (socket.remoteAddress !== undefined && normaliseIp(socket.remoteAddress) !== normaliseIp(hop.address)) {
          request.destroy(refused(`Refusing ${url.origin}: the connection reached ${socket.remoteAddress}, not the vetted ${hop.address}.`));
        }
      };
      socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', connected);
    });
    request.once('response', (response) => {
      clearTimeout(connectTimer);
      resolve({ response, socket: response.socket });
    });
    request.once('error', (error) => {
      clearTimeout(connectTimer);
      reject(error);
    });
    request.end();
  });
}

function normaliseIp(address: string): string {
  return address.replace(/^::ffff:/i, '').toLowerCase();
}

async function readCapped(response: IncomingMessage, url: URL, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  let sniffed = false;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      response.destroy();
      throw new InvalidImageError('too_many_bytes', `The image at ${url.href} is more than ${maxBytes} bytes, above maxBytes (${maxBytes}).`, { hint: 'Send a smaller image.' });
    }
    chunks.push(chunk);
    // The type is judged from the first bytes, so that an HTML page or a PDF is dropped before it is all downloaded.
    if (!sniffed && total >= 32) {
      sniffed = true;
      const head = Buffer.concat(chunks);
      if (!sniffFormat(head)) {
        response.destroy();
        throw new InvalidImageError('unsupported_format', `The URL ${url.href} serves ${describeRefusedBytes(head)}, not an accepted image.`);
      }
    }
  }
  const bytes = Buffer.concat(chunks, total);
  if (!sniffFormat(bytes)) throw new InvalidImageError('unsupported_format', `The URL ${url.href} serves ${describeRefusedBytes(bytes)}, not an accepted image.`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkPolicy(options: SafeFetchOptions): void {
  const check = (name: string, value: unknown, minimum: number): void => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < minimum)) {
      throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${String(value)}.`);
    }
  };
  check('maxBytes', options.maxBytes, 1);
  check('maxRedirects', options.maxRedirects, 0);
  check('connectTimeoutMs', options.connectTimeoutMs, 1);
  check('timeoutMs', options.timeoutMs, 1);
  for (const origin of options.unsafeAllowOrigins ?? []) {
    if (new URL(origin).origin !== origin) throw new InvalidOptionError('invalid_value', `unsafeAllowOrigins entries must be bare origins like http://127.0.0.1:8080, got ${origin}.`);
  }
}

/**
 * Downloads an image URL that a stranger supplied, without letting them reach anything private (SSRF). Each hop:
 * scheme (https; http only by option), no credentials, the optional host allowlist, DNS resolved once and every
 * address checked with {@link refusedAddressReason}, the connection pinned to the vetted address; redirects are
 * followed by hand and each target vetted the same way. Connect and total timeouts, a byte cap counted while
 * streaming, no compressed bodies, and the type checked from the first bytes.
 *
 * Every refusal is an `InvalidImageError`: `url_refused` (policy), `fetch_failed` (network, HTTP status, timeout),
 * `too_many_bytes`, `unsupported_format`.
 *
 * @example
 * ```ts
 * const bytes = await safeFetchImage(new URL('https://images.example/cat.jpg'), { maxBytes: 20 * 1024 * 1024, allowedHosts: ['images.example'] });
 * ```
 */
export async function safeFetchImage(start: URL, options: SafeFetchOptions): Promise<Uint8Array> {
  checkPolicy(options);
  const policy = {
    ...options,
    allowHttp: options.allowHttp ?? SAFE_FETCH_DEFAULTS.allowHttp,
    maxRedirects: options.maxRedirects ?? SAFE_FETCH_DEFAULTS.maxRedirects,
    connectTimeoutMs: options.connectTimeoutMs ?? SAFE_FETCH_DEFAULTS.connectTimeoutMs,
    timeoutMs: options.timeoutMs ?? SAFE_FETCH_DEFAULTS.timeoutMs,
  };
  const resolve = options.resolve ?? systemResolver;
  const timeout = AbortSignal.timeout(policy.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let url = start;
  try {
    for (let redirects = 0; ; redirects += 1) {
      signal.throwIfAborted();
      const hop = await vet(url, policy, resolve);
      signal.throwIfAborted();
      const { response } = await openHop(hop, policy.connectTimeoutMs, signal);
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400 && response.headers.location !== undefined) {
        response.destroy();
        if (policy.maxRedirects === 0) throw refused(`Refusing ${start.href}: it redirects, and redirects are not followed.`);
        if (redirects >= policy.maxRedirects) throw new InvalidImageError('fetch_failed', `Downloading ${start.href} was redirected more than ${policy.maxRedirects} times.`);
        let next: URL;
        try {
          next = new URL(response.headers.location, url);
        } catch {
          throw new InvalidImageError('fetch_failed', `${url.href} redirects to an invalid URL.`);
        }
        url = next;
        continue;
      }
      if (status < 200 || status >= 300) {
        response.destroy();
        throw new InvalidImageError('fetch_failed', `Downloading ${url.href} failed with HTTP ${status}.`);
      }
      const encoding = response.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        response.destroy();
        throw new InvalidImageError('fetch_failed', `${url.href} sent a ${encoding}-compressed body, which is not accepted for images.`);
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > options.maxBytes) {
        response.destroy();
        throw new InvalidImageError('too_many_bytes', `The image at ${url.href} is ${declared} bytes, above maxBytes (${options.maxBytes}).`, { hint: 'Send a smaller image.' });
      }
      return await readCapped(response, url, options.maxBytes);
    }
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) {
      throw new InvalidImageError('fetch_failed', `Downloading ${start.href} took longer than ${options.timeoutOptionName ?? 'timeoutMs'} (${policy.timeoutMs} ms).`, { cause: error });
    }
    if (InvalidImageError.isInstance(error)) throw error;
    const code = (error as NodeJS.ErrnoException)?.code;
    throw new InvalidImageError('fetch_failed', `Downloading ${url.href} failed: ${code ?? (error as Error)?.message ?? String(error)}.`, { cause: error });
  }
}
