// The attacks of issue 13 that the server used to fail, each through the real server: the real decoder and tiny
// models where an image is involved, the loopback LLM stand-in where a reply is, a gated vision double only where a
// test must hold slots busy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AnswerFieldScanner, MAX_REPLY_CHARS, parseAnswerReply } from '../../dist/chains/parse-answer.js';
import { countJpegScans, countTiffDirectories } from '../../dist/src/image/count-image-passes.js';
import { decodeDataUrl } from '../../dist/src/image/read-image-bytes.js';
import { startVqaServer, type RunningVqaServer, type VqaServerOptions } from '../../dist/src/server/vqa-server.js';
import { fixtureImage, root } from '../helpers/fixtures.js';
import { dataUrl, llmReply, postJson, startTestServer, type TestServer, type TestServerOptions } from '../server/server-helpers.js';
import { chatBody, GatedVision, pngBytes, toDataUrl, until } from './helpers.js';
import { firstScans, manyDirectoryTiff, openSocket, rawRequest, tiffPages, unfinishedPost } from './raw-http.js';

interface ContextView {
  queue: { state: { running: number; waiting: number } };
}

let testServer: TestServer | undefined;
let gatedServer: RunningVqaServer | undefined;
let vision: GatedVision | undefined;

afterEach(async () => {
  vision?.open();
  await gatedServer?.close().catch(() => undefined);
  await testServer?.close().catch(() => undefined);
  testServer = undefined;
  gatedServer = undefined;
  vision = undefined;
});

async function start(options: TestServerOptions = {}): Promise<TestServer> {
  testServer = await startTestServer({ web: false, ...options });
  return testServer;
}

function contextOf(server: RunningVqaServer): ContextView {
  return (server.app as unknown as { vqaContext: ContextView }).vqaContext;
}

/** A server on the gated vision double: its model calls wait until `vision.open()`, so slots can be held busy. */
async function startGated(options: Partial<VqaServerOptions> = {}): Promise<{ server: RunningVqaServer; logs: string[] }> {
  vision = new GatedVision();
  const logs: string[] = [];
  const { Writable } = await import('node:stream');
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(String(chunk));
      callback();
    },
  });
  gatedServer = await startVqaServer({ vision, llm: 'none', logger: { level: 'info', stream }, web: false, host: '127.0.0.1', port: 0, ...options });
  // The readiness probe's two model calls start with the server and wait on the gate.
  await until(() => vision!.started === 2);
  return { server: gatedServer, logs };
}

// A progressive JPEG (1536x1536, 379 KB) of 2,080 scans: one DC scan, then every AC coefficient of every component in
// eleven successive-approximation passes. Made with jpegtran -scans (libjpeg-turbo caps a script at 100 scans, so 21
// scripts over the same picture were spliced: same tables and frame, scans appended). Decoding it takes seconds.
const MANY_SCANS = readFileSync(join(root, 'test', 'fixtures', 'odd-images', 'many-scans.jpg'));

describe('deeply nested JSON', () => {
  it('should refuse a body nested a million levels deep with 400 json_too_deep before parsing it, and stay responsive', async () => {
    const { url } = await start();
    const depth = 1_000_000;
    const response = await postJson(`${url}/v1/chat/completions`, `{"model":"vqa-llm","messages":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'json_too_deep', type: 'invalid_request_error' });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('should still accept ordinary nesting, a JSON schema in response_format included', async () => {
    const { url } = await start();
    const schema = { type: 'object', properties: { shortAnswer: { type: 'string' }, candidates: { type: 'array', items: { type: 'object', properties: { answer: { type: 'string' } } } } } };
    const response = await postJson(`${url}/v1/chat/completions`, chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?", { response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } }));
    expect(response.status).toBe(200);
  });
});

describe('LLM replies, parsed in linear time with a size cap', () => {
  it('should fall back with llm_unusable on a reply of 100 KB of "{" instead of parsing it', async () => {
    const server = await start({ fakeLlm: true });
    server.fakeLlm!.script([{ kind: 'content', content: '{'.repeat(100_000), chunks: 50 }]);
    const response = await postJson(`${server.url}/v1/chat/completions`, chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?"));
    expect(response.status).toBe(200);
    expect(response.body.vqa_llm.source).toBe('vqa');
    expect(response.body.vqa_llm.fallbackReason.code).toBe('llm_unusable');
  });

  it('should stream no more of an overlong answer than an answer may hold, and end the stream with the fallback', async () => {
    const server = await start({ fakeLlm: true });
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('pole', 'a'.repeat(100_000)), chunks: 2000 }]);
    const response = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?", { stream: true })),
    });
    const text = await response.text();
    // The pre-fix server sent 1.6 MB of deltas here; an answer is at most 500 characters.
    expect(text.length).toBeLessThan(200_000);
    const events = text.split('\n\n').filter((line) => line.startsWith('data: {')).map((line) => JSON.parse(line.slice(6)));
    expect(events.at(-1).vqa_llm.fallbackReason.code).toBe('llm_unusable');
  });

  it('should free the slot of a stream whose client stopped reading once its deadline passes, and end the response', async () => {
    const server = await start({ fakeLlm: true, requestTimeoutMs: 1500 });
    const context = contextOf(server.server);
    server.fakeLlm!.script([{ kind: 'drip', content: llmReply('pole', 'p'.repeat(400)), intervalMs: 20 }]);
    const body = JSON.stringify(chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?", { stream: true }));
    const { socket, closed } = openSocket(server.url);
    let ended = false;
    socket.on('end', () => (ended = true));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.pause();
    await until(() => context.queue.state.running === 1);
    // The client reads nothing; the deadline alone frees the slot and ends the response.
    await until(() => context.queue.state.running === 0);
    socket.resume();
    socket.on('data', () => undefined);
    await until(() => ended);
    socket.destroy();
    await closed;
  });

  it('should read the answer field of a streamed reply as it arrives, escapes and split chunks included', () => {
    const scanner = new AnswerFieldScanner();
    for (const piece of ['{"short_answer": "2", "Ans', 'wer": "Two \\"big\\" dogs\\u00e9', ' and {braces}', '", "x": 1}', ' trailing "answer": "no"']) scanner.push(piece);
    expect(scanner.answer).toBe('Two "big" dogsé and {braces}');
  });

  it('should parse the answer out of prose, fences and nesting, and refuse a reply over the cap unread', () => {
    expect(parseAnswerReply('Sure: {"wrapper": {"shortAnswer": "2", "answer": "Two."}}')).toEqual({ ok: true, value: { shortAnswer: '2', answer: 'Two.' } });
    expect(parseAnswerReply(`${'{'.repeat(MAX_REPLY_CHARS)}`)).toMatchObject({ ok: false, code: 'llm_malformed' });
    expect(parseAnswerReply('{'.repeat(MAX_REPLY_CHARS + 1))).toMatchObject({ ok: false, code: 'llm_unusable' });
  });
});

describe('decode work bounded before and after the queue', () => {
  it('should count a JPEG of 2,080 scans and a TIFF of 5,000 directories from their bytes', async () => {
    expect(countJpegScans(MANY_SCANS, 100_000)).toBe(2080);
    expect(countJpegScans(MANY_SCANS, 100)).toBe(101);
    const tiff = manyDirectoryTiff(5000);
    expect(await tiffPages(tiff)).toBe(5000);
    expect(countTiffDirectories(tiff, 100_000)).toBe(5000);
    expect(countJpegScans(readFileSync(fixtureImage('fishing.jpg')), 100)).toBeLessThanOrEqual(10);
  });

  it('should refuse the JPEG of 2,080 scans and the TIFF of 5,000 directories with 400 before any decode', async () => {
    const { url } = await start();
    const jpeg = await postJson(`${url}/v1/chat/completions`, chatBody(toDataUrl(MANY_SCANS, 'image/jpeg')));
    expect(jpeg.status).toBe(400);
    expect(jpeg.body.error).toMatchObject({ code: 'invalid_image', reason: 'too_many_pixels' });
    expect(jpeg.body.error.message).toContain('scans');
    const tiff = await postJson(`${url}/v1/chat/completions`, chatBody(toDataUrl(manyDirectoryTiff(5000), 'image/tiff')));
    expect(tiff.status).toBe(400);
    expect(tiff.body.error.message).toContain('directories');
  });

  it('should keep the slot of a request past its deadline until its decode has really ended', async () => {
    // 900 scans (the library's own limit is 1000) and the server's limit raised, so that the slow decode is admitted;
    // the deadline passes while libvips is still at work on it.
    const slow = firstScans(MANY_SCANS, 900);
    expect(countJpegScans(slow, 100_000)).toBe(900);
    const server = await start({ maxJpegScans: 1000, requestTimeoutMs: 300, maxConcurrency: 1 });
    const context = contextOf(server.server);
    const response = await postJson(`${server.url}/v1/chat/completions`, chatBody(toDataUrl(slow, 'image/jpeg')));
    expect(response.status).toBe(504);
    // The 504 is out, the decode is not: its slot is still taken, so no new work lands on a busy decoder.
    expect(context.queue.state.running).toBe(1);
    await until(() => context.queue.state.running === 0);
    const next = await postJson(`${server.url}/v1/chat/completions`, chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?"));
    expect(next.status).toBe(200);
  });
});

describe('every turn of a conversation checked as the question is', () => {
  const image = (): string => dataUrl('fishing.jpg');
  const conversation = (earlierQuestion: string, earlierAnswer = 'He holds a pole.'): Record<string, unknown> => ({
    model: 'vqa-llm',
    messages: [
      { role: 'user', content: [{ type: 'text', text: earlierQuestion }, { type: 'image_url', image_url: { url: image() } }] },
      { role: 'assistant', content: earlierAnswer },
      { role: 'user', content: 'And what colour is it?' },
    ],
  });

  it('should refuse control characters and overlong texts in earlier turns of chat completions and the Responses API', async () => {
    const server = await start({ fakeLlm: true });
    const chat = `${server.url}/v1/chat/completions`;
    const bell = await postJson(chat, conversation('What is \u0007 this?'));
    expect(bell.status).toBe(400);
    expect(bell.body.error).toMatchObject({ code: 'invalid_question', reason: 'control_characters' });
    expect((await postJson(chat, conversation('x'.repeat(5000)))).body.error).toMatchObject({ code: 'invalid_question', reason: 'too_long' });
    expect((await postJson(chat, conversation('What is it?', 'y'.repeat(1_000_000)))).body.error).toMatchObject({ code: 'invalid_question', reason: 'too_long' });
    const responses = await postJson(`${server.url}/v1/responses`, {
      model: 'vqa-llm',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'What \u202e is it?' }, { type: 'input_image', image_url: image() }] },
        { role: 'assistant', content: 'A pole.' },
        { role: 'user', content: 'Sure?' },
      ],
    });
    expect(responses.body.error).toMatchObject({ code: 'invalid_question', reason: 'control_characters' });
    // None of them reached the LLM.
    expect(server.fakeLlm!.requests).toHaveLength(0);
  });

  it('should check /v1/vqa history turns the same way', async () => {
    const server = await start({ fakeLlm: true });
    const ask = (history: unknown): Promise<{ status: number; body: any }> => postJson(`${server.url}/v1/vqa`, { image: image(), question: 'And its colour?', history });
    expect((await ask([{ question: 'What \u0000 is it?', shortAnswer: 'pole', answer: 'A pole.' }])).body.error).toMatchObject({ code: 'invalid_question', reason: 'control_characters' });
    expect((await ask([{ question: 'What is it?', shortAnswer: 'pole', answer: 'z'.repeat(1_000_000) }])).body.error).toMatchObject({ code: 'invalid_question', reason: 'too_long' });
    expect((await ask('not a list')).status).toBe(400);
    expect(server.fakeLlm!.requests).toHaveLength(0);
  });
});

describe('client mistakes answered 4xx, never 5xx', () => {
  it('should answer 130,000 image parts in one message with a 4xx', async () => {
    const { url } = await start();
    const parts = Array.from({ length: 130_000 }, () => ({ type: 'image_url', image_url: { url: 'data:,x' } }));
    const response = await postJson(`${url}/v1/chat/completions`, { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What?' }, ...parts] }] });
    expect(response.status).toBe(400);
  });

  it('should answer multipart without a boundary and a truncated multipart body with a 4xx', async () => {
    const { url } = await start();
    const noBoundary = await rawRequest(`${url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: '--x\r\nContent-Disposition: form-data; name="question"\r\n\r\nWhat?\r\n--x--\r\n' });
    expect(noBoundary.status).toBeGreaterThanOrEqual(400);
    expect(noBoundary.status).toBeLessThan(500);
    const truncated = await rawRequest(`${url}/v1/vqa`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
      body: '--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff partial',
    });
    expect(truncated.status).toBe(400);
    expect(JSON.parse(truncated.body).error.code).toBe('invalid_multipart');
  });
});

describe('the early refusal at capacity', () => {
  it('should refuse encoded spellings of the model routes at capacity before reading their bodies', async () => {
    const { server } = await startGated({ maxConcurrency: 1, maxQueue: 0, bodyTimeoutMs: 5000 });
    const held = postJson(`${server.url}/v1/chat/completions`, chatBody(toDataUrl(await pngBytes())));
    await until(() => contextOf(server).queue.state.running === 1);
    for (const path of ['/v1/chat/complet%69ons', '/v1/vq%61', '/v1/responses#x', '/v1/vqa?x=1']) {
      const unfinished = unfinishedPost(server.url, path);
      const response = await unfinished.response;
      unfinished.close();
      expect({ path, status: response.status }).toEqual({ path, status: 503 });
    }
    vision!.open();
    expect((await held).status).toBe(200);
  });

  it('should count requests whose bodies are still arriving, so that slow bodies cannot pile up beyond capacity', async () => {
    const { server } = await startGated({ maxConcurrency: 1, maxQueue: 1, bodyTimeoutMs: 20_000 });
    const first = unfinishedPost(server.url, '/v1/chat/completions');
    const second = unfinishedPost(server.url, '/v1/chat/completions');
    // The third is refused at once although neither of the first two has reached the queue.
    let third: Awaited<ReturnType<typeof unfinishedPost>['response']> | undefined;
    await until(async () => {
      const attempt = unfinishedPost(server.url, '/v1/chat/completions');
      const outcome = await Promise.race([attempt.response, new Promise<undefined>((resolve) => setTimeout(resolve, 200))]);
      attempt.close();
      third = outcome;
      return outcome !== undefined;
    });
    expect(third!.status).toBe(503);
    first.close();
    second.close();
  });
});

describe('noise and descriptors under a flood', () => {
  it('should log a flood of 503s as short info lines, never errors with stacks', async () => {
    const { server, logs } = await startGated({ maxConcurrency: 1, maxQueue: 0 });
    const held = postJson(`${server.url}/v1/chat/completions`, chatBody(toDataUrl(await pngBytes())));
    await until(() => contextOf(server).queue.state.running === 1);
    const refused = await Promise.all(Array.from({ length: 20 }, () => postJson(`${server.url}/v1/chat/completions`, { model: 'vqa-llm' })));
    expect(refused.every((response) => response.status === 503)).toBe(true);
    vision!.open();
    await held;
    const lines = logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level: number; err?: unknown; msg: string });
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(lines.some((line) => line.err !== undefined)).toBe(false);
  });

  it('should close connections beyond maxConnections on arrival', async () => {
    const { server } = await startGated({ maxConnections: 4 });
    const sockets = Array.from({ length: 10 }, () => openSocket(server.url));
    let closedByServer = 0;
    for (const { closed } of sockets) void closed.then(() => (closedByServer += 1));
    // Six are closed by the server although the client never ends them.
    await until(() => closedByServer >= 6);
    const open = await new Promise<number>((resolve, reject) => server.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    expect(open).toBeLessThanOrEqual(4);
    for (const { socket } of sockets) socket.destroy();
  });
});

describe('percent-encoded data URLs', () => {
  it('should decode a percent-encoded image to the same bytes as its base64 form', async () => {
    const bytes = await pngBytes(32, 24);
    const percent = `data:image/png,${[...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')}`;
    expect(Buffer.from(decodeDataUrl(percent, 1_000_000))).toEqual(Buffer.from(decodeDataUrl(toDataUrl(bytes), 1_000_000)));
    expect(Buffer.from(decodeDataUrl('data:,a%zz%4', 100)).toString('latin1')).toBe('a%zz%4');
  });
});
