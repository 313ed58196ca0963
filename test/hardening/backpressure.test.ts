import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startVqaServer, type RunningVqaServer, type VqaServerOptions } from '../../dist/src/server/vqa-server.js';
import { postJson } from '../server/server-helpers.js';
import { chatBody, GatedVision, pngBytes, toDataUrl, until } from './helpers.js';

interface QueueView {
  state: { running: number; waiting: number };
}

let server: RunningVqaServer | undefined;
let vision: GatedVision;

async function start(options: Partial<VqaServerOptions> = {}): Promise<{ url: string; queue: QueueView; body: Record<string, unknown> }> {
  vision = new GatedVision();
  server = await startVqaServer({ vision, llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0, ...options });
  const queue = (server.app as unknown as { vqaContext: { queue: QueueView } }).vqaContext.queue;
  // The readiness probe's two model calls start with the server and wait on the gate; counts below start after them.
  await until(() => vision.started === 2);
  return { url: server.url, queue, body: chatBody(toDataUrl(await pngBytes()), 'What is it?') };
}

afterEach(async () => {
  vision?.open();
  await server?.close();
  server = undefined;
});

/** Sends raw bytes and resolves with whatever the server wrote before it closed the socket. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += String(chunk)));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.write(data);
  });
}

describe('backpressure', () => {
  it('should answer 503 with Retry-After at once beyond in-flight plus queue capacity, and finish every accepted request', async () => {
    const { url, queue, body } = await start({ maxConcurrency: 2, maxQueue: 3, retryAfterSeconds: 2 });
    const accepted = Array.from({ length: 5 }, () => postJson(`${url}/v1/chat/completions`, body));
    await until(() => queue.state.running === 2 && queue.state.waiting === 3);

    const started = performance.now();
    const refused = await postJson(`${url}/v1/chat/completions`, body);
    // "Within milliseconds": generous, since a request held by the queue would wait for the gate, i.e. forever.
    expect(performance.now() - started).toBeLessThan(1000);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.body.error).toMatchObject({ code: 'server_busy', type: 'service_unavailable_error' });
    expect(refused.body.error.message).toContain('at capacity');

    // A large body at capacity is refused from its headers: the server does not wait for 4 MB to arrive.
    const large = await postJson(`${url}/v1/vqa`, { image: `data:image/png;base64,${'A'.repeat(4 * 1024 * 1024)}`, question: 'q' });
    expect(large.status).toBe(503);
    expect((await postJson(`${url}/v1/vqa`, { image: 'x', question: 'q' })).status).toBe(503);

    vision.open();
    const results = await Promise.all(accepted);
    expect(results.map((result) => result.status)).toEqual([200, 200, 200, 200, 200]);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/vqa_llm_rejected_requests_total\{reason="server_busy"\} 3/);
  });

  it('should drop queued work whose deadline passed: 503, and it never reaches the models', async () => {
    const { url, queue, body } = await start({ maxConcurrency: 1, maxQueue: 4, requestTimeoutMs: 300 });
    // The test holds the only slot itself, so that nothing but the deadline can move the queued request.
    const release = await (queue as unknown as { acquire(): Promise<() => void> }).acquire();
    const probeCalls = vision.started;
    try {
      const queued = await postJson(`${url}/v1/chat/completions`, body);
      expect(queued.status).toBe(503);
      expect(queued.body.error.code).toBe('queue_timeout');
      expect(queued.headers.get('retry-after')).toBe('1');
      expect(vision.started).toBe(probeCalls);
      expect(queue.state).toEqual({ running: 1, waiting: 0 });
    } finally {
      release();
    }
  });

  it('should abort running work past its deadline with a 504 and stop the model calls', async () => {
    const { url, queue, body } = await start({ maxConcurrency: 1, requestTimeoutMs: 300 });
    const probeCalls = vision.started;
    const response = await postJson(`${url}/v1/chat/completions`, body);
    expect(response.status).toBe(504);
    expect(response.body.error.code).toBe('deadline_exceeded');
    expect(vision.started - probeCalls).toBe(2);
    expect(vision.aborted).toBe(2);
    expect(queue.state).toEqual({ running: 0, waiting: 0 });
  });

  it('should refuse a question longer than the limit before the image is read', async () => {
    const { url } = await start({ maxQuestionLength: 50 });
    const response = await postJson(`${url}/v1/chat/completions`, chatBody('data:image/png;base64,AAAA', 'why '.repeat(20)));
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('invalid_question');
    expect(response.body.error.message).toContain('50');
  });

  it("should set Node's header, body and keep-alive timeouts and cut a client that sends its headers too slowly", async () => {
    await start({ headersTimeoutMs: 300, bodyTimeoutMs: 600, keepAliveTimeoutMs: 1000 });
    const http = server!.app.server;
    expect(http.headersTimeout).toBe(300);
    expect(http.requestTimeout).toBe(600);
    expect(http.keepAliveTimeout).toBe(1000);
    const port = (http.address() as { port: number }).port;
    // Slowloris: a request line and one header, then nothing.
    const slowHeaders = await rawExchange(port, 'POST /v1/vqa HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect(slowHeaders).toMatch(/^HTTP\/1\.1 408/);
    // Headers complete, body promised but never sent in full.
    const slowBody = await rawExchange(port, 'POST /v1/vqa HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"image":');
    expect(slowBody === '' || /^HTTP\/1\.1 (408|400)/.test(slowBody)).toBe(true);
  });

  it('should count rejects by reason, queue depth and resident memory in the metrics', async () => {
    const { url } = await start();
    await postJson(`${url}/v1/chat/completions`, { model: 'vqa-llm', messages: new Array(100).fill({ role: 'user', content: 'hi' }) });
    await postJson(`${url}/v1/chat/completions`, chatBody('data:image/png;base64,AAAA', 'q', { top_k: 999 }));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/vqa_llm_rejected_requests_total\{reason="too_many_messages"\} 1/);
    expect(metrics).toMatch(/vqa_llm_rejected_requests_total\{reason="invalid_value"\} 1/);
    expect(metrics).toMatch(/^vqa_llm_queue_depth 0$/m);
    expect(metrics).toMatch(/^vqa_llm_rss_bytes \d{6,}$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
  });
});
