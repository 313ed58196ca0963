// Who may call the server: API keys, the Host allow-list (DNS rebinding), CORS and cross-site form posts, through the
// real server on the tiny models.
import { afterEach, describe, expect, it } from 'vitest';
import { dataUrl, startTestServer, type TestServer, type TestServerOptions } from '../server/server-helpers.js';
import { createVqaServer } from '../../dist/src/server/vqa-server.js';
import { chatBody, GatedVision } from './helpers.js';
import { rawRequest } from './raw-http.js';

const KEYS = ['first-key-0123456789abcdef', 'second-key-0123456789abcdef'];

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(options: TestServerOptions = {}): Promise<TestServer> {
  server = await startTestServer({ web: false, ...options });
  return server;
}

function multipart(boundary: string): string {
  return [`--${boundary}`, 'Content-Disposition: form-data; name="question"', '', 'What is it?', `--${boundary}`, 'Content-Disposition: form-data; name="image"; filename="a.jpg"', 'Content-Type: image/jpeg', '', Buffer.from(dataUrl('fishing.jpg').split(',')[1]!, 'base64').toString('latin1'), `--${boundary}--`, ''].join('\r\n');
}

async function upload(url: string, headers: Record<string, string>): Promise<{ status: number; code?: string }> {
  const response = await rawRequest(`${url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b0undary', ...headers }, body: Buffer.from(multipart('b0undary'), 'latin1') });
  return { status: response.status, code: response.status === 200 ? undefined : JSON.parse(response.body).error.code };
}

describe('API keys', () => {
  it('should require a Bearer key on every route but the health probes, accepting any of several keys', async () => {
    const { url } = await start({ apiKeys: KEYS });
    const body = JSON.stringify(chatBody(dataUrl('fishing.jpg')));
    const post = (authorization?: string): Promise<Response> =>
      fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body });
    const missing = await post();
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await missing.json()).error.code).toBe('missing_api_key');
    expect((await (await post('Bearer wrong-key-0123456789abcdef')).json()).error.code).toBe('invalid_api_key');
    expect((await post(`Basic ${KEYS[0]}`)).status).toBe(401);
    expect((await post(`Bearer ${KEYS[1]}`)).status).toBe(200);
    expect((await post(`bearer ${KEYS[0]}`)).status).toBe(200);
    for (const path of ['/healthz', '/readyz']) expect((await fetch(`${url}${path}`)).status).toBe(200);
    for (const path of ['/metrics', '/v1/models']) {
      expect((await fetch(`${url}${path}`)).status).toBe(401);
      expect((await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${KEYS[0]}` } })).status).toBe(200);
    }
  });

  it('should refuse a key too short to resist guessing, without echoing it', async () => {
    const refused = await createVqaServer({ vision: new GatedVision({ open: true }), llm: 'none', logger: false, apiKeys: ['short'] }).catch((error: unknown) => error as Error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/apiKeys\[0\] is not valid/);
    expect((refused as Error).message).not.toContain('short');
  });
});

describe('the Host allow-list', () => {
  it('should answer only loopback names when bound to loopback, and any listed name when given', async () => {
    const { url } = await start();
    const port = new URL(url).port;
    const withHost = (host: string): Promise<{ status: number; body: string }> => rawRequest(`${url}/v1/models`, { headers: { host } });
    const rebound = await withHost(`attacker.example:${port}`);
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error.code).toBe('host_not_allowed');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST.']) expect((await withHost(host)).status).toBe(200);
    // Probes come from orchestrators that may use any name.
    expect((await rawRequest(`${url}/healthz`, { headers: { host: 'attacker.example' } })).status).toBe(200);
    await server!.close();

    const { url: listed } = await start({ allowedHosts: ['vqa.internal:8080'] });
    expect((await rawRequest(`${listed}/v1/models`, { headers: { host: 'vqa.internal' } })).status).toBe(200);
    expect((await rawRequest(`${listed}/v1/models`, { headers: { host: 'localhost' } })).status).toBe(403);
  });
});

describe('browsers on other origins', () => {
  it('should refuse a cross-site multipart form post, by Origin or by Sec-Fetch-Site, and accept a same-origin one', async () => {
    const { url } = await start();
    expect(await upload(url, { origin: 'http://attacker.example' })).toEqual({ status: 403, code: 'cross_origin_refused' });
    expect(await upload(url, { 'sec-fetch-site': 'cross-site' })).toEqual({ status: 403, code: 'cross_origin_refused' });
    expect(await upload(url, { origin: 'null' })).toEqual({ status: 403, code: 'cross_origin_refused' });
    expect((await upload(url, { origin: url, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    // Non-browser clients send neither header.
    expect((await upload(url, {})).status).toBe(200);
  });

  it('should keep CORS off by default and allow only the listed origins', async () => {
    const preflight = (url: string, origin: string): Promise<{ status: number; headers: Record<string, unknown> }> =>
      rawRequest(`${url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    const { url } = await start();
    const closed = await preflight(url, 'https://app.example');
    expect(closed.status).toBe(403);
    expect(closed.headers['access-control-allow-origin']).toBeUndefined();
    await server!.close();

    const { url: open } = await start({ corsOrigins: ['https://app.example'] });
    const allowed = await preflight(open, 'https://app.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    expect((await preflight(open, 'https://other.example')).status).toBe(403);
    const models = await fetch(`${open}/v1/models`, { headers: { origin: 'https://app.example' } });
    expect(models.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(await upload(open, { origin: 'https://app.example' })).toEqual({ status: 200, code: undefined });
  });
});
