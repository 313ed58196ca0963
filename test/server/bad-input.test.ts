import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureImage } from '../helpers/fixtures.js';
import { dataUrl, postJson, startTestServer, type TestServer } from './server-helpers.js';

const image = dataUrl('fishing.jpg');
const imagePart = { type: 'image_url', image_url: { url: image } };
const textPart = (text: string) => ({ type: 'text', text });

function expectOpenAiError(response: { status: number; body: any }, status: number, code: string): void {
  expect({ status: response.status, code: response.body?.error?.code }).toEqual({ status, code });
  expect(typeof response.body.error.message).toBe('string');
  expect(response.body.error.type).toMatch(/_error$/);
  expect(response.body.error).toHaveProperty('param');
}

describe('the server refusing bad input', () => {
  let server: TestServer;
  let chat: string;

  beforeAll(async () => {
    server = await startTestServer({ bodyLimitBytes: 512 * 1024, maxImageBytes: 256 * 1024 });
    chat = `${server.baseUrl}/chat/completions`;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should answer malformed JSON with 400 invalid_json, without quoting the body', async () => {
    const response = await postJson(chat, '{"model": "vqa-llm", "messages": [ {"secret-looking": "AAAABBBB"');
    expectOpenAiError(response, 400, 'invalid_json');
    expect(JSON.stringify(response.body)).not.toContain('AAAABBBB');
  });

  it('should answer a body over the size limit with 413', async () => {
    const response = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${'A'.repeat(600 * 1024)}` } }] }] });
    expectOpenAiError(response, 413, 'request_too_large');
  });

  it('should answer a conversation without an image with 400 missing_image', async () => {
    expectOpenAiError(await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: 'What is this?' }] }), 400, 'missing_image');
  });

  it('should answer two different images with 400 too_many_images, naming the second', async () => {
    const response = await postJson(chat, {
      model: 'vqa-llm',
      messages: [{ role: 'user', content: [textPart('Which is bigger?'), imagePart, { type: 'image_url', image_url: { url: dataUrl('truck.jpg') } }] }],
    });
    expectOpenAiError(response, 400, 'too_many_images');
    expect(response.body.error.param).toBe('messages[0].content[2].image_url.url');
  });

  it('should refuse an http image URL while URL fetching is off, and file paths always', async () => {
    const url = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: 'http://169.254.169.254/latest/meta-data' } }] }] });
    expectOpenAiError(url, 400, 'image_url_not_allowed');
    const path = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: fixtureImage('fishing.jpg') } }] }] });
    expectOpenAiError(path, 400, 'invalid_image_url');
    const file = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: 'file:///etc/passwd' } }] }] });
    expectOpenAiError(file, 400, 'invalid_image_url');
  });

  it('should answer an unknown model with 404 model_not_found', async () => {
    expectOpenAiError(await postJson(chat, { model: 'gpt-4o', messages: [{ role: 'user', content: [textPart('What?'), imagePart] }] }), 404, 'model_not_found');
    expectOpenAiError(await postJson(chat, { messages: [{ role: 'user', content: [textPart('What?'), imagePart] }] }), 400, 'missing_model');
  });

  it('should answer a missing question with 400 missing_question', async () => {
    expectOpenAiError(await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [imagePart] }] }), 400, 'missing_question');
    expectOpenAiError(await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('   '), imagePart] }] }), 400, 'missing_question');
    // A conversation that ends with the assistant has nothing to answer.
    expectOpenAiError(
      await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), imagePart] }, { role: 'assistant', content: 'A fish.' }] }),
      400,
      'missing_question',
    );
  });

  it('should answer an unsupported message role with 400 unsupported_role', async () => {
    for (const role of ['tool', 'function', 'wizard']) {
      const response = await postJson(chat, { model: 'vqa-llm', messages: [{ role, content: 'x' }, { role: 'user', content: [textPart('What?'), imagePart] }] });
      expectOpenAiError(response, 400, 'unsupported_role');
      expect(response.body.error.param).toBe('messages[0].role');
    }
  });

  it('should answer bytes that are not an image, and an image over the limit, with 400 invalid_image', async () => {
    const text = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from('hello, not an image').toString('base64')}` } }] }] });
    expectOpenAiError(text, 400, 'invalid_image');
    expect(text.body.error.reason).toBe('unsupported_format');
    const big = await postJson(chat, { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${'A'.repeat(360 * 1024)}` } }] }] });
    expectOpenAiError(big, 400, 'invalid_image');
    expect(big.body.error.reason).toBe('too_many_bytes');
  });

  it('should give the streaming client a 4xx before any event when the image is bad', async () => {
    const response = await postJson(chat, { model: 'vqa-llm', stream: true, messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }] }] });
    expectOpenAiError(response, 400, 'invalid_image');
  });

  it('should answer odd shapes with 400 and never 5xx', async () => {
    const bodies: unknown[] = [
      [],
      'null',
      { model: 'vqa-llm' },
      { model: 'vqa-llm', messages: 'hello' },
      { model: 'vqa-llm', messages: [null] },
      { model: 'vqa-llm', messages: [{ role: 'user', content: 42 }] },
      { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: {} }] }] },
      { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What?'), { type: 'image_url' }] }] },
      { model: 'vqa-llm', stream: 'yes', messages: [{ role: 'user', content: [textPart('What?'), imagePart] }] },
      { model: 'vqa-llm', top_k: 1000, messages: [{ role: 'user', content: [textPart('What?'), imagePart] }] },
      { model: 'vqa-llm', messages: [{ role: 'user', content: [textPart('What\u202E?'), imagePart] }] },
      { model: 'vqa-llm', messages: [{ role: 'assistant', content: [imagePart] }, { role: 'user', content: 'What?' }] },
    ];
    for (const body of bodies) {
      const response = await postJson(chat, typeof body === 'string' ? body : body);
      expect(response.status, JSON.stringify(body).slice(0, 120)).toBe(400);
      expect(response.body.error.code).toBeTypeOf('string');
    }
  });

  it('should answer a wrong content type with 415 and an unknown route with 404, both OpenAI-shaped', async () => {
    const response = await fetch(chat, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(response.status).toBe(415);
    expect((await response.json()).error.code).toBe('unsupported_media_type');
    const missing = await fetch(`${server.baseUrl}/embeddings`, { method: 'POST' });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.type).toBe('not_found_error');
  });

  it('should raise a typed BadRequestError in the openai SDK', async () => {
    const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const error = await client.chat.completions.create({ model: 'vqa-llm', messages: [{ role: 'user', content: 'no image here' }] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('missing_image');
  });

  describe('/v1/vqa', () => {
    const upload = (form: FormData) => fetch(`${server.baseUrl}/vqa`, { method: 'POST', body: form }).then(async (response) => ({ status: response.status, body: await response.json() }));
    const jpeg = () => new Blob([readFileSync(fixtureImage('fishing.jpg'))], { type: 'image/jpeg' });

    it('should answer a multipart upload with the full result', async () => {
      const form = new FormData();
      form.append('question', "What is in the man's hand?");
      form.append('top_k', '3');
      form.append('image', jpeg(), 'fishing.jpg');
      const response = await upload(form);
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ question: "What is in the man's hand?", source: 'vqa', fallbackReason: { code: 'llm_disabled' } });
      expect(response.body.candidates).toHaveLength(3);
    });

    it('should answer JSON with a data URL the same way as multipart', async () => {
      const response = await postJson(`${server.baseUrl}/vqa`, { image, question: "What is in the man's hand?", top_k: 3 });
      expect(response.status).toBe(200);
      expect(response.body.candidates).toHaveLength(3);
    });

    it('should refuse two uploaded images, a missing image, a missing question and an oversized upload', async () => {
      const two = new FormData();
      two.append('question', 'What?');
      two.append('image', jpeg(), 'a.jpg');
      two.append('image', jpeg(), 'b.jpg');
      expectOpenAiError(await upload(two), 400, 'too_many_images');

      const noImage = new FormData();
      noImage.append('question', 'What?');
      expectOpenAiError(await upload(noImage), 400, 'missing_image');

      const noQuestion = new FormData();
      noQuestion.append('image', jpeg(), 'a.jpg');
      expectOpenAiError(await upload(noQuestion), 400, 'missing_question');

      const big = new FormData();
      big.append('question', 'What?');
      big.append('image', new Blob([new Uint8Array(300 * 1024)]), 'big.jpg');
      expectOpenAiError(await upload(big), 413, 'image_too_large');

      expectOpenAiError(await postJson(`${server.baseUrl}/vqa`, { question: 'What?' }), 400, 'missing_image');
      expectOpenAiError(await postJson(`${server.baseUrl}/vqa`, { image, question: '' }), 400, 'missing_question');
      expectOpenAiError(await postJson(`${server.baseUrl}/vqa`, { image: 'https://example.com/a.jpg', question: 'What?' }), 400, 'image_url_not_allowed');
    });
  });

  it('should still be healthy after all of it', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('should survive a client that hangs up in the middle of a request', async () => {
    await new Promise<void>((resolve) => {
      const request = httpRequest(chat, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '100000' } });
      request.on('error', () => resolve());
      request.write('{"model": "vqa-llm", "messages": [');
      setTimeout(() => {
        request.destroy();
        resolve();
      }, 50);
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
