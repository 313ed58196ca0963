import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatConfig, maskSecret, maskUrl } from '../../dist/src/server/describe-config.js';
import { createRequestQueue } from '../../dist/src/server/request-queue.js';
import { dataUrl, postJson, startTestServer, type TestServer } from './server-helpers.js';

describe('the server operations endpoints', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should report liveness and, once the probe inference ran, readiness', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    // Until the first probe inference has passed, /readyz says `loading` at once (see test/hardening/operations).
    await (server.server.app as unknown as { vqaContext: { readiness: { settled(): Promise<unknown> } } }).vqaContext.readiness.settled();
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', models: { caption: 'tiny-blip', vqa: 'tiny-vle' } });
  });

  it('should count requests, stages, fallbacks and rejects in Prometheus format', async () => {
    const image = dataUrl('truck.jpg');
    const question = { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'How many people are there?' }, { type: 'image_url', image_url: { url: image } }] }] };
    expect((await postJson(`${server.baseUrl}/chat/completions`, question)).status).toBe(200);
    expect((await postJson(`${server.baseUrl}/chat/completions`, question)).status).toBe(200);
    expect((await postJson(`${server.baseUrl}/chat/completions`, { model: 'nope', messages: [] })).status).toBe(404);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/vqa_llm_http_requests_total\{method="POST",route="\/v1\/chat\/completions",status="200"\} 2/);
    expect(text).toMatch(/vqa_llm_stage_duration_seconds_count\{stage="caption"\} 2/);
    expect(text).toMatch(/vqa_llm_fallbacks_total\{reason="llm_disabled"\} 2/);
    expect(text).toMatch(/vqa_llm_image_cache_hits_total\{kind="caption"\} 1/);
    expect(text).toMatch(/vqa_llm_rejected_requests_total\{reason="model_not_found"\} 1/);
    expect(text).toMatch(/^vqa_llm_queue_depth 0$/m);
    expect(text).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('should serve the demo page at /', async () => {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('VQA+LLM');
    expect((await fetch(`${server.url}/app.js`)).status).toBe(200);
  });

  it('should never write image bytes, bodies or headers to its logs', async () => {
    const image = dataUrl('fishing.jpg');
    const payload = image.slice(image.indexOf(',') + 1);
    await postJson(`${server.baseUrl}/chat/completions`, { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What?' }, { type: 'image_url', image_url: { url: image } }] }] }, { authorization: 'Bearer sk-secret-token-1234567890' });
    await postJson(`${server.baseUrl}/chat/completions`, `{"model": "vqa-llm", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "${image}"`);
    await postJson(`${server.baseUrl}/vqa`, { image: `data:image/png;base64,${payload.slice(0, 4000)}`, question: 'What?' });
    const logs = server.logs.join('');
    expect(logs).toContain('"msg":"answered"');
    for (let offset = 0; offset < 2000; offset += 500) expect(logs).not.toContain(payload.slice(offset, offset + 40));
    expect(logs).not.toContain('sk-secret-token');
  });
});

describe('the configuration printout', () => {
  it('should mask secrets and URL credentials', () => {
    expect(maskSecret('sk-proj-abcdefghijklmnopqrstuvwxyz')).toBe('sk-…wxyz (34 chars)');
    expect(maskSecret('short')).toBe('**** (5 chars)');
    expect(maskSecret(undefined)).toBe('(not set)');
    expect(maskUrl('https://user:hunter2@llm.example/v1?api_key=abc&x=1')).toBe('https://user:****@llm.example/v1?api_key=****&x=1');
    expect(formatConfig([{ name: 'port', value: '8080', source: 'default' }, { name: 'llm base url', value: 'x', source: 'env OPENAI_BASE_URL' }])).toMatchInlineSnapshot(`
      "  port          8080  (default)
        llm base url  x     (env OPENAI_BASE_URL)"
    `);
  });
});

describe('the request queue', () => {
  it('should run at most `concurrency` tasks and drop a waiting task whose signal aborts', async () => {
    const queue = createRequestQueue({ concurrency: 1 });
    let release!: () => void;
    const first = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
    const controller = new AbortController();
    const second = queue.run(async () => 'ran', controller.signal);
    const third = queue.run(async () => 'third');
    expect(queue.state).toEqual({ running: 1, waiting: 2 });
    controller.abort(new Error('gone'));
    await expect(second).rejects.toThrow('gone');
    expect(queue.state).toEqual({ running: 1, waiting: 1 });
    release();
    await first;
    expect(await third).toBe('third');
    expect(queue.state).toEqual({ running: 0, waiting: 0 });
  });
});

describe('image URLs, when the operator turns them on', () => {
  let server: TestServer;
  const fetched: string[] = [];

  beforeAll(async () => {
    const bytes = Buffer.from(dataUrl('truck.jpg').split(',')[1]!, 'base64');
    server = await startTestServer({
      allowImageUrls: true,
      // The seam the SSRF-safe downloader plugs into: every client URL goes through it.
      fetchImage: async (url) => {
        fetched.push(url.href);
        return bytes;
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should download http(s) image URLs through the injected fetcher, and still refuse other schemes', async () => {
    const ask = (url: string) => postJson(`${server.baseUrl}/chat/completions`, { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What?' }, { type: 'image_url', image_url: { url } }] }] });
    expect((await ask('https://images.example/truck.jpg')).status).toBe(200);
    expect(fetched).toEqual(['https://images.example/truck.jpg']);
    expect((await ask('file:///etc/passwd')).body.error.code).toBe('invalid_image_url');
    expect((await ask('/etc/passwd')).body.error.code).toBe('invalid_image_url');
  });
});
