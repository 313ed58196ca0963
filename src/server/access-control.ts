// Who may call the server, decided from the request line and headers before any body is read: the Host allow-list
// (DNS rebinding), CORS and cross-site form posts (a page elsewhere driving a browser), and API keys.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from './api-error.js';
import type { ResolvedServerSettings } from './server-context.js';
import { SERVER_DEFAULTS } from './server-defaults.js';

/** Routes open to anyone who reaches the port: orchestrators probe them without keys or the public host name. */
export const HEALTH_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Compares a presented key with every configured one in time that does not depend on where they differ or which one
 * matches: fixed-length digests, `timingSafeEqual`, and no early exit.
 *
 * @example
 * ```ts
 * const isKey = createKeyCheck(['first-key-0123456789abcdef']);
 * isKey('first-key-0123456789abcdef'); // true
 * ```
 */
export function createKeyCheck(keys: readonly string[]): (presented: string) => boolean {
  const digests = keys.map(digest);
  return (presented) => {
    const candidate = digest(presented);
    let matched = false;
    for (const known of digests) matched = timingSafeEqual(candidate, known) || matched;
    return matched;
  };
}

/**
 * The host name of a Host header, lower case, without port or trailing dot; undefined when there is none.
 *
 * @example
 * ```ts
 * hostName('LocalHost.:8080'); // 'localhost'
 * hostName('[::1]:8080'); // '[::1]'
 * ```
 */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const value = header.trim().toLowerCase();
  const name = value.startsWith('[') ? value.slice(0, value.indexOf(']') + 1) : value.replace(/:\d*$/, '');
  return name.replace(/\.$/, '') || undefined;
}

function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address === 'localhost' || (isIP(address) === 4 && address.startsWith('127.')) || address.startsWith('::ffff:127.');
}

function refuse(status: number, code: string, message: string): ApiError {
  return new ApiError(status, code, message, { type: 'invalid_request_error' });
}

// The page's origin against the Host it sent to, port included; `null` (sandboxed frames, file: pages) never matches.
function isSameOrigin(origin: string, host: string | undefined): boolean {
  const lower = origin.toLowerCase();
  return host !== undefined && host !== '' && (lower === `http://${host}` || lower === `https://${host}`);
}

/**
 * Registers the access checks as the first `onRequest` hook, so that a refused request costs no body read:
 *
 * - Host: with an allow-list (by default the loopback names when the server is bound to a loopback address), any
 *   other Host is 403 `host_not_allowed`: a page on a rebinding domain reaches 127.0.0.1 with its own name in Host.
 * - CORS: off unless `corsOrigins` lists origins; those get `Access-Control-Allow-Origin` and preflight answers.
 * - Cross-site writes: a POST whose `Origin` is neither this server nor an allowed origin, or whose
 *   `Sec-Fetch-Site` says another site sent it, is 403 `cross_origin_refused` (a form on another site can post
 *   multipart without any preflight).
 * - API keys: with keys set, every route but the health probes needs `Authorization: Bearer <key>` (401 otherwise).
 *
 * @example
 * ```ts
 * registerAccessControl(app, { ...settings, apiKeys: ['first-key-0123456789abcdef'], corsOrigins: [] });
 * ```
 */
export function registerAccessControl(app: FastifyInstance, settings: ResolvedServerSettings): void {
  const checkKey = settings.apiKeys.length > 0 ? createKeyCheck(settings.apiKeys) : undefined;
  const corsOrigins = new Set(settings.corsOrigins);
  let allowedHosts: ReadonlySet<string> | null | undefined = !settings.allowedHosts ? undefined : settings.allowedHosts.includes('*') ? null : new Set(settings.allowedHosts.map((host) => hostName(host)!));

  // Decided on the first request, once the socket is bound: the address says whether the loopback default applies.
  const hostsFor = (): ReadonlySet<string> | null => {
    if (allowedHosts !== undefined) return allowedHosts;
    const address = app.server.address();
    allowedHosts = typeof address === 'object' && address !== null && isLoopbackAddress(address.address) ? new Set(SERVER_DEFAULTS.loopbackHosts) : null;
    return allowedHosts;
  };

  const cors = (request: FastifyRequest, reply: FastifyReply, origin: string): void => {
    void reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      void reply
        .header('access-control-allow-methods', 'GET, POST, OPTIONS')
        .header('access-control-allow-headers', 'authorization, content-type, x-stainless-os, x-stainless-lang, x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-package-version, x-stainless-retry-count, x-stainless-timeout, openai-organization, openai-project')
        .header('access-control-max-age', '600');
    }
  };

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route !== undefined && HEALTH_ROUTES.has(route)) return;
    const host = hostName(request.headers.host);
    const hosts = hostsFor();
    if (hosts && (host === undefined || !hosts.has(host))) {
      throw refuse(403, 'host_not_allowed', `The Host header ${JSON.stringify((request.headers.host ?? '').slice(0, 100))} is not one this server answers to; see --allowed-host.`);
    }

    const origin = typeof request.headers.origin === 'string' ? request.headers.origin : undefined;
    const allowedOrigin = origin !== undefined && (corsOrigins.has(origin) || corsOrigins.has('*'));
    if (allowedOrigin) cors(request, reply, origin);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      if (!allowedOrigin) throw refuse(403, 'cross_origin_refused', 'Cross-origin requests are not allowed from this origin; see --cors-origin.');
      return reply.status(204).send();
    }
    if (!SAFE_METHODS.has(request.method) && !allowedOrigin) {
      const fetchSite = request.headers['sec-fetch-site'];
      const crossSite = fetchSite === 'cross-site' || fetchSite === 'same-site' || (origin !== undefined && !isSameOrigin(origin, request.headers.host?.trim().toLowerCase()));
      if (crossSite) throw refuse(403, 'cross_origin_refused', 'A request sent by a page on another site is refused; see --cors-origin to allow an origin.');
    }

    if (checkKey) {
      const authorization = request.headers.authorization;
      const match = typeof authorization === 'string' ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization) : null;
      if (!match || !checkKey(match[1]!)) {
        void reply.header('www-authenticate', 'Bearer');
        throw refuse(401, match ? 'invalid_api_key' : 'missing_api_key', match ? 'The API key is not valid.' : 'This server needs an API key: send `Authorization: Bearer <key>`.');
      }
    }
    return undefined;
  });
}
