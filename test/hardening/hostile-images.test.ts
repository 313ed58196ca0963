import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../server/server-helpers.js';
import { buildHostileCorpus, fuzzSeeds, mutate, seededRandom, type Expectation } from './hostile-corpus.js';
import { startLoopbackServer, toDataUrl, type LoopbackServer } from './helpers.js';

// Short by default so that npm test stays quick; `npm run test:stress` runs thousands.
const FUZZ_ITERATIONS = Number(process.env.VQA_LLM_FUZZ_ITERATIONS ?? 300);
const FUZZ_SEED = Number(process.env.VQA_LLM_FUZZ_SEED ?? 20_261_123);
// Far beyond what any case needs on the tiny models: only a hang reaches it.
const HANG_MS = 20_000;

interface Outcome {
  status: number;
  code?: string;
  reason?: string;
  message?: string;
  answer?: string;
}

async function send(server: TestServer, bytes: Buffer, options: { multipart?: boolean; mediaType?: string; chat?: boolean } = {}): Promise<Outcome> {
  const signal = AbortSignal.timeout(HANG_MS);
  let response: Response;
  if (options.multipart) {
    const form = new FormData();
    form.set('question', 'What is in the picture?');
    form.set('image', new Blob([bytes], { type: options.mediaType ?? 'image/jpeg' }), 'upload.jpg');
    response = await fetch(`${server.url}/v1/vqa`, { method: 'POST', body: form, signal });
  } else if (options.chat) {
    const body = { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }, { type: 'image_url', image_url: { url: toDataUrl(bytes, options.mediaType) } }] }] };
    response = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  } else {
    response = await fetch(`${server.url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: toDataUrl(bytes, options.mediaType), question: 'What is in the picture?' }), signal });
  }
  const json = (await response.json()) as { error?: { code: string; message: string; reason?: string }; answer?: string; choices?: { message: { content: string } }[] };
  return { status: response.status, code: json.error?.code, reason: json.error?.reason, message: json.error?.message, answer: json.answer ?? json.choices?.[0]?.message.content };
}

/** The contract for every input: a 200 with an answer, or a 4xx whose message a person can act on. Never a 5xx. */
function checkContract(outcome: Outcome, label: string): void {
  expect(outcome.status, `${label}: ${JSON.stringify(outcome)}`).toBeLessThan(500);
  if (outcome.status === 200) {
    expect(typeof outcome.answer === 'string' && outcome.answer.length > 0, label).toBe(true);
  } else {
    expect(outcome.status, label).toBeGreaterThanOrEqual(400);
    expect(outcome.code, label).toBeTruthy();
    expect(outcome.message!.length, label).toBeGreaterThan(15);
    // No stack traces or server paths in what a client reads (a decoder's one-line reason is fine).
    expect(outcome.message, label).not.toMatch(/\n\s+at |node_modules|\/work\/|\/home\//);
  }
}

function matches(outcome: Outcome, expected: Expectation): boolean {
  if (expected === 'any') return true;
  if (expected === 'ok') return outcome.status === 200;
  if (expected.status === '4xx') return outcome.status >= 400 && outcome.status < 500;
  return outcome.status === expected.status && outcome.code === expected.code && (expected.reason === undefined || outcome.reason === expected.reason);
}

describe('hostile and odd images against the real server (tiny models)', () => {
  let server: TestServer;
  let external: LoopbackServer;
  const summary: { corpus: { name: string; expected: Expectation; status: number; code?: string; message?: string }[]; fuzz: Record<string, number> } = { corpus: [], fuzz: {} };

  beforeAll(async () => {
    external = await startLoopbackServer((_request, response) => response.writeHead(404).end());
    server = await startTestServer({ maxConcurrency: 4, maxQueue: 64 });
  });
  afterAll(async () => {
    await server?.close();
    await external?.close();
    const folder = join(root, 'test', 'output', 'hardening');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'hostile-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  });

  it('should answer or refuse each of at least 30 hostile images with a clear 4xx, never a 5xx, a crash or a hang', async () => {
    const corpus = await buildHostileCorpus(external.origin);
    expect(corpus.length).toBeGreaterThanOrEqual(30);
    for (const item of corpus) {
      const outcome = await send(server, item.bytes, { mediaType: item.mediaType });
      summary.corpus.push({ name: item.name, expected: item.expect, status: outcome.status, code: outcome.code, message: outcome.message });
      checkContract(outcome, item.name);
      expect(matches(outcome, item.expect), `${item.name}: expected ${JSON.stringify(item.expect)}, got ${JSON.stringify(outcome)}`).toBe(true);
    }
    // The same bytes through the OpenAI route and as uploads end the same way.
    for (const item of corpus.slice(0, 12)) {
      const viaChat = await send(server, item.bytes, { chat: true, mediaType: item.mediaType });
      const viaUpload = await send(server, item.bytes, { multipart: true });
      checkContract(viaChat, `${item.name} (chat)`);
      checkContract(viaUpload, `${item.name} (upload)`);
      expect(viaChat.status === 200, item.name).toBe(viaUpload.status === 200);
    }
    // No decoder, SVG renderer or PDF reader followed a reference out of an image.
    expect(external.hits).toEqual([]);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it(`should survive ${FUZZ_ITERATIONS} seeded mutations of valid images (seed ${FUZZ_SEED}) with only 200s and clear 4xx`, async () => {
    const seeds = await fuzzSeeds();
    const random = seededRandom(FUZZ_SEED);
    const cases = Array.from({ length: FUZZ_ITERATIONS }, (_, index) => {
      const seed = seeds[Math.floor(random() * seeds.length)]!;
      const { bytes, how } = mutate(seed.bytes, random);
      return { label: `#${index} ${seed.name} ${how}`, bytes, multipart: index % 3 === 0 };
    });
    const limit = pLimit(4);
    const outcomes = await Promise.all(cases.map((item) => limit(async () => ({ item, outcome: await send(server, item.bytes, { multipart: item.multipart }) }))));
    for (const { item, outcome } of outcomes) {
      checkContract(outcome, item.label);
      const key = outcome.status === 200 ? '200' : `${outcome.status} ${outcome.code}`;
      summary.fuzz[key] = (summary.fuzz[key] ?? 0) + 1;
    }
    expect(Object.values(summary.fuzz).reduce((sum, count) => sum + count, 0)).toBe(FUZZ_ITERATIONS);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
