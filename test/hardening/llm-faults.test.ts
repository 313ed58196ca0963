import { afterEach, describe, expect, it } from 'vitest';
import { createChatModel } from '../../dist/src/llm/index.js';
import { createCircuitBreaker } from '../../dist/src/llm/circuit-breaker.js';
import { retryAfterMs, retryDelayMs, isRetryableLlmError } from '../../dist/src/llm/retry-policy.js';
import { startVqaServer, type RunningVqaServer, type VqaServerOptions } from '../../dist/src/server/vqa-server.js';
import { startFakeOpenAiServer, type FakeOpenAiServer, type ScriptedReply } from '../helpers/fake-openai-server.js';
import { llmReply, postJson } from '../server/server-helpers.js';
import { chatBody, GatedVision, pngBytes, toDataUrl, until } from './helpers.js';

const GOOD: ScriptedReply = { kind: 'content', content: llmReply('cat', 'It is a cat.'), chunks: 3 };

interface Harness {
  server: RunningVqaServer;
  llm: FakeOpenAiServer;
  image: string;
  ask(stream?: boolean): Promise<{ status: number; body: any }>;
  breakerState(): string | undefined;
  metrics(): Promise<string>;
}

let harness: Harness | undefined;

async function start(options: Partial<VqaServerOptions> & { llmRetries?: number; llmTimeoutMs?: number } = {}): Promise<Harness> {
  const { llmRetries = 0, llmTimeoutMs = 500, ...serverOptions } = options;
  const llm = await startFakeOpenAiServer([GOOD]);
  const server = await startVqaServer({
    vision: new GatedVision({ open: true }),
    llm: createChatModel({ provider: 'openai', baseUrl: llm.baseUrl, model: 'fake-llm', env: {}, timeoutMs: 10_000, maxRetries: 0 }),
    chainOptions: { llmRetries, llmTimeoutMs, llmRetryBackoff: { baseDelayMs: 1, maxDelayMs: 5 } },
    logger: false,
    web: false,
    host: '127.0.0.1',
    port: 0,
    ...serverOptions,
  });
  const image = toDataUrl(await pngBytes());
  const context = (server.app as unknown as { vqaContext: { breaker?: { state: string } } }).vqaContext;
  harness = {
    server,
    llm,
    image,
    async ask(stream = false) {
      if (!stream) return postJson(`${server.url}/v1/chat/completions`, chatBody(image, 'What animal is this?'));
      const response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chatBody(image, 'What animal is this?', { stream: true })) });
      const text = await response.text();
      const events = text.split('\n\n').filter((line) => line.startsWith('data: {')).map((line) => JSON.parse(line.slice(6)));
      return { status: response.status, body: { vqa_llm: events.at(-1)?.vqa_llm } };
    },
    breakerState: () => context.breaker?.state,
    metrics: async () => (await fetch(`${server.url}/metrics`)).text(),
  };
  return harness;
}

afterEach(async () => {
  await harness?.server.close();
  await harness?.llm.close();
  harness = undefined;
});

describe('LLM faults against the loopback fake endpoint', () => {
  it('should keep answering through every fault, with the fallback reason in the result and the metrics', async () => {
    const { llm, ask, metrics } = await start({ llmCircuitBreaker: false });
    const faults: [string, ScriptedReply, string][] = [
      ['HTTP 500', { kind: 'status', status: 500 }, 'llm_http_error'],
      ['HTTP 429', { kind: 'status', status: 429 }, 'llm_rate_limited'],
      ['hang', { kind: 'hang' }, 'llm_timeout'],
      ['malformed body', { kind: 'garbage', body: '{"choices": [ this is not json' }, 'llm_'],
      ['reply that is not the JSON asked for', { kind: 'content', content: 'I think it might be a cat, honestly.' }, 'llm_malformed'],
      ['cut stream', { kind: 'cut', content: llmReply('cat', 'It is a cat that is sitting on a mat.'), chunks: 4 }, 'llm_stream_interrupted'],
      ['slow drip', { kind: 'drip', content: llmReply('cat', 'It is a cat.'), intervalMs: 100 }, 'llm_timeout'],
    ];
    for (const stream of [false, true]) {
      for (const [name, reply, code] of faults) {
        llm.script([reply]);
        const { status, body } = await ask(stream);
        expect(status, name).toBe(200);
        const result = stream ? body.vqa_llm : body.vqa_llm;
        expect(result.source, name).toBe('vqa');
        expect(result.answer, name).toBe('Cat.');
        expect(result.fallbackReason.code, name).toContain(code);
      }
    }
    llm.script([GOOD]);
    expect((await ask()).body.vqa_llm.source).toBe('llm');
    const text = await metrics();
    expect(text).toMatch(/vqa_llm_fallbacks_total\{reason="llm_timeout"\} 4/);
    expect(text).toMatch(/vqa_llm_fallbacks_total\{reason="llm_http_error"\} 2/);
    expect(text).toMatch(/vqa_llm_answers_total\{source="llm"\} 1/);
  });

  it('should retry a 5xx with backoff and answer from the LLM when a later attempt succeeds', async () => {
    const { llm, ask } = await start({ llmRetries: 2, llmTimeoutMs: 5_000, llmCircuitBreaker: false });
    llm.script([{ kind: 'status', status: 503 }, { kind: 'status', status: 502 }, GOOD]);
    const { body } = await ask();
    expect(body.vqa_llm.source).toBe('llm');
    expect(llm.requests).toHaveLength(3);
  });

  it("should wait at least the endpoint's retry-after before retrying a 429", async () => {
    const { llm, ask } = await start({ llmRetries: 1, llmTimeoutMs: 5_000, llmCircuitBreaker: false });
    llm.script([{ kind: 'status', status: 429, headers: { 'retry-after': '1' } }, GOOD]);
    const started = performance.now();
    const { body } = await ask();
    // A lower bound, not a timing window: the backoff here is 1-5 ms, so only retry-after explains a second's wait.
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(body.vqa_llm.source).toBe('llm');
    expect(llm.requests).toHaveLength(2);
  });

  it('should not retry when retry-after asks for longer than the LLM deadline leaves', async () => {
    const { llm, ask } = await start({ llmRetries: 3, llmTimeoutMs: 2_000, llmCircuitBreaker: false });
    llm.script([{ kind: 'status', status: 429, headers: { 'retry-after': '60' } }, GOOD]);
    const { body } = await ask();
    expect(body.vqa_llm.fallbackReason.code).toBe('llm_rate_limited');
    expect(llm.requests).toHaveLength(1);
  });

  it('should open the circuit after repeated failures so that a dead LLM gets no requests, then close it after a good half-open probe', async () => {
    const { llm, ask, breakerState, metrics } = await start({ llmCircuitBreaker: { failureThreshold: 3, resetTimeoutMs: 400 } });
    llm.script([{ kind: 'hang' }]);
    for (let index = 0; index < 3; index += 1) expect((await ask()).body.vqa_llm.fallbackReason.code).toBe('llm_timeout');
    expect(breakerState()).toBe('open');
    expect(llm.requests).toHaveLength(3);

    // Open: answers keep coming, from the VQA model, without a single request upstream.
    for (let index = 0; index < 10; index += 1) {
      const started = performance.now();
      const { status, body } = await ask(index % 2 === 1);
      expect(status).toBe(200);
      expect(body.vqa_llm.fallbackReason.code).toBe('llm_circuit_open');
      // Generous: a hanging LLM would cost the full 500 ms deadline here.
      expect(performance.now() - started).toBeLessThan(400);
    }
    expect(llm.requests).toHaveLength(3);
    expect(await metrics()).toMatch(/^vqa_llm_llm_circuit_state 2$/m);

    // After resetTimeoutMs one probe goes through; the endpoint is healthy again, so the circuit closes.
    llm.script([GOOD]);
    await until(() => breakerState() === 'half-open');
    expect((await ask()).body.vqa_llm.source).toBe('llm');
    expect(breakerState()).toBe('closed');
    expect(llm.requests).toHaveLength(4);
    const text = await metrics();
    expect(text).toMatch(/^vqa_llm_llm_circuit_state 0$/m);
    expect(text).toMatch(/vqa_llm_llm_circuit_transitions_total\{state="open"\} 1/);
    expect(text).toMatch(/vqa_llm_llm_circuit_transitions_total\{state="half-open"\} 1/);
    expect(text).toMatch(/vqa_llm_fallbacks_total\{reason="llm_circuit_open"\} 10/);
  });

  it('should reopen the circuit when the half-open probe fails', async () => {
    const { llm, ask, breakerState } = await start({ llmCircuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 } });
    llm.script([{ kind: 'status', status: 500 }]);
    await ask();
    await ask();
    expect(breakerState()).toBe('open');
    await until(() => breakerState() === 'half-open');
    expect((await ask()).body.vqa_llm.fallbackReason.code).toBe('llm_http_error');
    expect(breakerState()).toBe('open');
    expect(llm.requests).toHaveLength(3);
  });

  it('should not count a malformed reply from a working endpoint as an endpoint failure', async () => {
    const { llm, ask, breakerState } = await start({ llmCircuitBreaker: { failureThreshold: 2, resetTimeoutMs: 60_000 } });
    llm.script([{ kind: 'content', content: 'not json' }]);
    for (let index = 0; index < 4; index += 1) expect((await ask()).body.vqa_llm.fallbackReason.code).toBe('llm_malformed');
    expect(breakerState()).toBe('closed');
  });
});

describe('the circuit breaker', () => {
  it('should allow one probe at a time when half-open and count only consecutive failures', () => {
    let now = 0;
    const states: string[] = [];
    const breaker = createCircuitBreaker({ failureThreshold: 2, resetTimeoutMs: 1000, now: () => now, onStateChange: (state) => states.push(state) });
    breaker.tryAcquire()!.release('failure');
    breaker.tryAcquire()!.release('success');
    breaker.tryAcquire()!.release('failure');
    expect(breaker.state).toBe('closed');
    breaker.tryAcquire()!.release('failure');
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBeUndefined();
    expect(breaker.retryInMs()).toBe(1000);
    now = 1000;
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined();
    probe!.release('ignored');
    const second = breaker.tryAcquire();
    second!.release('success');
    second!.release('failure'); // a second release is a no-op
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('should name a bad option', () => {
    expect(() => createCircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
  });
});

describe('the retry policy', () => {
  it('should jitter within half to all of the exponential step and never wait less than retry-after', () => {
    expect(retryDelayMs(1, { status: 500 }, { baseDelayMs: 100, random: () => 0 })).toBe(50);
    expect(retryDelayMs(1, { status: 500 }, { baseDelayMs: 100, random: () => 0.999999 })).toBeCloseTo(100, 3);
    expect(retryDelayMs(3, { status: 500 }, { baseDelayMs: 100, random: () => 0 })).toBe(200);
    expect(retryDelayMs(10, { status: 500 }, { baseDelayMs: 100, maxDelayMs: 1000, random: () => 0 })).toBe(500);
    expect(retryDelayMs(1, { status: 429, headers: new Headers({ 'retry-after': '3' }) }, { random: () => 0 })).toBe(3000);
    expect(retryDelayMs(1, { status: 429, headers: { 'retry-after-ms': '1500' } }, { random: () => 0 })).toBe(1500);
  });

  it('should read retry-after as seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs({ headers: new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }) }, now)).toBe(5000);
    expect(retryAfterMs({ response: { headers: new Headers({ 'retry-after': '2' }) } })).toBe(2000);
    expect(retryAfterMs({ headers: new Headers() })).toBeUndefined();
  });

  it('should retry rate limits, server errors and dropped connections, not client errors', () => {
    expect(isRetryableLlmError({ status: 429 })).toBe(true);
    expect(isRetryableLlmError({ status: 503 })).toBe(true);
    expect(isRetryableLlmError({ name: 'APIConnectionError' })).toBe(true);
    expect(isRetryableLlmError(Object.assign(new Error('x'), { cause: { code: 'ECONNRESET' } }))).toBe(true);
    expect(isRetryableLlmError({ status: 400 })).toBe(false);
    expect(isRetryableLlmError({ status: 401 })).toBe(false);
    expect(isRetryableLlmError(new Error('bad json'))).toBe(false);
  });
});
