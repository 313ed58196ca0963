import { afterEach, describe, expect, it } from 'vitest';
import { createChatModel } from '../../dist/src/llm/index.js';
import { startVqaServer, type RunningVqaServer, type VqaServerOptions } from '../../dist/src/server/vqa-server.js';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../helpers/fake-openai-server.js';
import { llmReply, postJson } from '../server/server-helpers.js';
import { chatBody, GatedVision, pngBytes, startLoopbackServer, toDataUrl, type LoopbackServer } from './helpers.js';

let server: RunningVqaServer | undefined;
let llm: FakeOpenAiServer | undefined;
let images: LoopbackServer | undefined;

async function start(options: Partial<VqaServerOptions> = {}): Promise<string> {
  server = await startVqaServer({ vision: new GatedVision({ open: true }), llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0, ...options });
  return server.url;
}

afterEach(async () => {
  await server?.close();
  await llm?.close();
  await images?.close();
  server = llm = images = undefined;
});

describe('input limits, enforced before any model work', () => {
  it('should refuse a body over the limit with 413, and a data URL whose decoded image is over maxImageBytes with 400', async () => {
    const url = await start({ bodyLimitBytes: 64 * 1024, maxImageBytes: 16 * 1024 });
    const tooBig = await postJson(`${url}/v1/chat/completions`, chatBody(`data:image/png;base64,${'A'.repeat(80 * 1024)}`));
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('request_too_large');
    // 40 KB of base64 is 30 KB of bytes: inside the body limit, over the image limit once decoded.
    const decodedTooBig = await postJson(`${url}/v1/chat/completions`, chatBody(`data:image/png;base64,${'A'.repeat(40 * 1024)}`));
    expect(decodedTooBig.status).toBe(400);
    expect(decodedTooBig.body.error).toMatchObject({ code: 'invalid_image', reason: 'too_many_bytes' });
    const form = new FormData();
    form.set('question', 'What?');
    form.set('image', new Blob([Buffer.alloc(20 * 1024, 1)]), 'big.jpg');
    const upload = await fetch(`${url}/v1/vqa`, { method: 'POST', body: form });
    expect(upload.status).toBe(413);
  });

  it('should bound message count, top-k and question length', async () => {
    const url = await start({ maxMessages: 4, maxTopK: 5, maxQuestionLength: 20 });
    const image = toDataUrl(await pngBytes());
    const messages = Array.from({ length: 5 }, () => ({ role: 'user', content: 'hi' }));
    expect((await postJson(`${url}/v1/chat/completions`, { model: 'vqa-llm', messages })).body.error.code).toBe('too_many_messages');
    for (const topK of [0, 6, 2.5, -1, '3']) {
      const response = await postJson(`${url}/v1/chat/completions`, chatBody(image, 'What?', { top_k: topK }));
      expect(response.status, String(topK)).toBe(400);
      expect(response.body.error.param).toBe('top_k');
    }
    expect((await postJson(`${url}/v1/vqa`, { image, question: 'What?', top_k: 6 })).status).toBe(400);
    expect((await postJson(`${url}/v1/chat/completions`, chatBody(image, 'x'.repeat(21)))).body.error.code).toBe('invalid_question');
    expect((await postJson(`${url}/v1/vqa`, { image, question: 'x'.repeat(21) })).body.error.code).toBe('invalid_question');
    expect((await postJson(`${url}/v1/chat/completions`, chatBody(image, 'What?', { top_k: 5 }))).status).toBe(200);
  });

  it('should refuse pixels, aspect ratio and frames from the header with the server limits', async () => {
    const url = await start({ maxImagePixels: 1000, maxImageAspectRatio: 2 });
    const big = await postJson(`${url}/v1/vqa`, { image: toDataUrl(await pngBytes(40, 40)), question: 'What?' });
    expect(big.body.error).toMatchObject({ code: 'invalid_image', reason: 'too_many_pixels' });
    const wide = await postJson(`${url}/v1/vqa`, { image: toDataUrl(await pngBytes(30, 10)), question: 'What?' });
    expect(wide.body.error).toMatchObject({ code: 'invalid_image', reason: 'aspect_ratio' });
  });
});

describe('image URLs through the server', () => {
  it('should stay off by default, and when on refuse plain http and private addresses', async () => {
    const off = await start();
    expect((await postJson(`${off}/v1/chat/completions`, chatBody('https://images.example/cat.png'))).body.error.code).toBe('image_url_not_allowed');
    await server!.close();
    const url = await start({ allowImageUrls: true });
    const http = await postJson(`${url}/v1/chat/completions`, chatBody('http://images.example/cat.png'));
    expect(http.body.error).toMatchObject({ code: 'invalid_image', reason: 'url_refused' });
    expect(http.body.error.message).toContain('only https');
    const metadata = await postJson(`${url}/v1/chat/completions`, chatBody('https://169.254.169.254/latest/meta-data/'));
    expect(metadata.body.error).toMatchObject({ code: 'invalid_image', reason: 'url_refused' });
    const file = await postJson(`${url}/v1/chat/completions`, chatBody('file:///etc/passwd'));
    expect(file.body.error.code).toBe('invalid_image_url');
    const path = await postJson(`${url}/v1/vqa`, { image: '/etc/passwd', question: 'What?' });
    expect(path.status).toBe(400);
  });

  it('should download an allowed image URL and give the LLM only text, never the URL or the bytes', async () => {
    const image = await pngBytes();
    images = await startLoopbackServer((_request, response) => response.writeHead(200, { 'content-type': 'image/png' }).end(image));
    llm = await startFakeOpenAiServer([{ kind: 'content', content: llmReply('cat', 'It is a cat.') }]);
    const url = await start({
      allowImageUrls: true,
      // The test's image server is on loopback: exempt that one origin, as only a test may.
      imageUrlPolicy: { unsafeAllowOrigins: [images.origin] },
      llm: createChatModel({ provider: 'openai', baseUrl: llm.baseUrl, model: 'fake', env: {}, maxRetries: 0 }),
    });
    const imageUrl = `${images.origin}/secret-path/cat.png`;
    const response = await postJson(`${url}/v1/chat/completions`, chatBody(imageUrl, 'What animal is this?'));
    expect(response.status).toBe(200);
    expect(response.body.vqa_llm.source).toBe('llm');
    expect(images.hits).toEqual(['/secret-path/cat.png']);
    const sent = JSON.stringify(llm.requests.map((request) => request.body));
    expect(sent).toContain('What animal is this?');
    expect(sent).not.toContain('secret-path');
    expect(sent).not.toContain('image_url');
    expect(sent).not.toContain(image.toString('base64').slice(0, 40));
    for (const request of llm.requests) {
      for (const message of request.body.messages as { content: unknown }[]) expect(typeof message.content).toBe('string');
    }
  });
});
