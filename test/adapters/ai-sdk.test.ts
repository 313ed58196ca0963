import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { generateText, NoSuchModelError, Output, streamText, tool, UnsupportedFunctionalityError, type ModelMessage } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createVqaLlm } from '../../dist/src/adapters/ai-sdk/index.js';
import { createVqaChain, InvalidConversationError, InvalidImageError } from '../../dist/src/index.js';
import type { VisionModels } from '../../dist/src/types.js';
import { dataUrl, imageBytes, loadTinyVision, question, reply, ReportingChatModel, sentence } from './helpers.js';

// The warnings are asserted on the results; printed, they would only clutter the test output.
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

function userMessage(text = question, image: Uint8Array | string | URL = imageBytes): ModelMessage {
  return { role: 'user', content: [{ type: 'image', image, mediaType: 'image/jpeg' }, { type: 'text', text }] };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

// The tiny models have random weights: the caption and candidates are noise, so this checks the wiring.
describe.skipIf(!existsSync('test/fixtures/models/tiny-blip'))('the AI SDK provider (vqa-llm/ai-sdk) on the tiny test models', () => {
  let vision: VisionModels;

  beforeAll(async () => {
    vision = await loadTinyVision();
  });
  afterAll(async () => {
    await vision?.dispose();
  });

  it('should answer generateText with the top candidate without an LLM, with usage 0 and the result in providerMetadata', async () => {
    const vqaLlm = createVqaLlm({ vision, llm: 'none' });
    const result = await generateText({ model: vqaLlm(), messages: [userMessage()], maxRetries: 0 });
    const metadata = result.providerMetadata!.vqaLlm as Record<string, any>;
    expect(metadata).toMatchObject({ source: 'vqa', fallbackReason: { code: 'llm_disabled' }, caption: expect.any(String), question });
    expect(metadata.candidates).toHaveLength(5);
    expect(metadata.timings.total).toBeGreaterThan(0);
    expect(result.text).toBe(metadata.answer);
    expect(metadata.shortAnswer).toBe(metadata.candidates[0].answer);
    expect(result.usage).toMatchObject({ inputTokens: 0, outputTokens: 0, totalTokens: 0 });
    expect(result.finishReason).toBe('stop');
    expect(result.response.modelId).toBe('vqa-llm');
  });

  it("should answer generateText with the LLM's sentence and its token usage", async () => {
    const vqaLlm = createVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)]) });
    const result = await generateText({ model: vqaLlm(), system: 'You are a vision model.', messages: [userMessage()], maxRetries: 0 });
    expect(result.text).toBe(sentence);
    expect(result.usage).toMatchObject({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
    expect(result.providerMetadata!.vqaLlm).toMatchObject({ source: 'llm', shortAnswer: 'fishing pole', caption: expect.any(String), candidates: expect.any(Array) });
    expect(result.providerMetadata!.vqaLlm).not.toHaveProperty('fallbackReason');
  });

  it('should stream with streamText: the sentence in several deltas, then usage and providerMetadata at the finish', async () => {
    const vqaLlm = createVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)]) });
    const result = streamText({ model: vqaLlm(), messages: [userMessage()], maxRetries: 0 });
    const parts: string[] = [];
    const pieces: string[] = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === 'text-delta') pieces.push(part.text);
    }
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join('')).toBe(sentence);
    const kinds = parts.filter((type, index) => type !== parts[index - 1]);
    expect(kinds).toEqual(['start', 'start-step', 'text-start', 'text-delta', 'text-end', 'finish-step', 'finish']);
    expect(await result.usage).toMatchObject({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
    expect(await result.providerMetadata).toMatchObject({ vqaLlm: { source: 'llm', shortAnswer: 'fishing pole', candidates: expect.any(Array) } });
    expect(await result.finishReason).toBe('stop');
  });

  it('should stream the VQA answer as one delta without an LLM', async () => {
    const result = streamText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage()], maxRetries: 0 });
    const text = await result.text;
    expect(text).toBe(((await result.providerMetadata)!.vqaLlm as { answer: string }).answer);
    expect(await result.usage).toMatchObject({ inputTokens: 0, outputTokens: 0, totalTokens: 0 });
  });

  it('should answer a follow-up question with the earlier turn as history and the image cached', async () => {
    const llm = new ReportingChatModel([reply('fishing pole', sentence), reply('a hat', 'He is wearing a hat.')]);
    const vqaLlm = createVqaLlm({ vision, llm });
    const first = await generateText({ model: vqaLlm(), messages: [userMessage()], maxRetries: 0 });
    const followUp = await generateText({
      model: vqaLlm(),
      messages: [userMessage(), ...first.response.messages, { role: 'user', content: 'What is he wearing?' }],
      maxRetries: 0,
    });
    expect(followUp.text).toBe('He is wearing a hat.');
    expect(followUp.providerMetadata!.vqaLlm).toMatchObject({ question: 'What is he wearing?', cached: { caption: true, imageEmbeddings: true } });
    const prompt = JSON.stringify(llm.prompts.at(-1)!.map((message) => message.content));
    expect(prompt).toContain(question);
    expect(prompt).toContain(sentence);
  });

  it('should read the image from a data URL and from base64', async () => {
    const vqaLlm = createVqaLlm({ vision, llm: 'none' });
    const fromBytes = await generateText({ model: vqaLlm(), messages: [userMessage()], maxRetries: 0 });
    for (const image of [dataUrl, imageBytes.toString('base64')]) {
      const result = await generateText({ model: vqaLlm(), messages: [userMessage(question, image)], maxRetries: 0 });
      expect(result.text).toBe(fromBytes.text);
    }
  });

  it('should refuse tools with an UnsupportedFunctionalityError rather than answer as if no tool existed', async () => {
    const weather = tool({ description: 'The weather in a city', inputSchema: z.object({ city: z.string() }), execute: async () => 'sunny' });
    const error = await caught(generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage()], tools: { weather }, maxRetries: 0 }));
    expect(UnsupportedFunctionalityError.isInstance(error)).toBe(true);
    expect((error as UnsupportedFunctionalityError).functionality).toBe('tools');
    expect((error as Error).message).toMatch(/never calls tools/);
  });

  it("should answer with tools present when toolChoice is 'none', with a warning", async () => {
    const weather = tool({ description: 'The weather in a city', inputSchema: z.object({ city: z.string() }), execute: async () => 'sunny' });
    const result = await generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage()], tools: { weather }, toolChoice: 'none', maxRetries: 0 });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.warnings).toContainEqual(expect.objectContaining({ type: 'unsupported', feature: 'tools' }));
  });

  it('should warn about sampling settings, which the chain ignores', async () => {
    const result = await generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage()], temperature: 0.2, maxOutputTokens: 50, maxRetries: 0 });
    expect(result.warnings?.map((warning) => (warning.type === 'unsupported' ? warning.feature : warning.type))).toEqual(['maxOutputTokens', 'temperature']);
  });

  it("should fill Output.object from the result's fields, and refuse a schema it cannot fill", async () => {
    const vqaLlm = createVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)]) });
    const schema = z.object({ shortAnswer: z.string(), answer: z.string(), candidates: z.array(z.object({ answer: z.string(), score: z.number() })) });
    const result = await generateText({ model: vqaLlm(), messages: [userMessage()], output: Output.object({ schema }), maxRetries: 0 });
    expect(result.output).toMatchObject({ shortAnswer: 'fishing pole', answer: sentence });
    expect(result.output.candidates).toHaveLength(5);

    const streamed = streamText({ model: vqaLlm(), messages: [userMessage()], output: Output.object({ schema }), maxRetries: 0 });
    expect(await streamed.output).toMatchObject({ answer: sentence });

    const unfillable = z.object({ answer: z.string(), color: z.string() });
    const error = await caught(generateText({ model: vqaLlm(), messages: [userMessage()], output: Output.object({ schema: unfillable }), maxRetries: 0 }));
    expect(UnsupportedFunctionalityError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('"color"');
  });

  it('should hold image bytes, base64 and data URLs alike to maxImageBytes', async () => {
    const vqaLlm = createVqaLlm({ vision, llm: 'none', maxImageBytes: imageBytes.byteLength - 1 });
    for (const image of [imageBytes, imageBytes.toString('base64'), dataUrl]) {
      const error = await caught(generateText({ model: vqaLlm(), messages: [userMessage(question, image)], maxRetries: 0 }));
      expect(InvalidImageError.isInstance(error) && error.reason === 'too_many_bytes').toBe(true);
    }
  });

  it('should refuse messages without an image, naming what is missing', async () => {
    const error = await caught(generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [{ role: 'user', content: question }], maxRetries: 0 }));
    expect(InvalidConversationError.isInstance(error)).toBe(true);
    expect((error as InvalidConversationError).reason).toBe('missing_image');

    const errors: unknown[] = [];
    const streamed = streamText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [{ role: 'user', content: question }], onError: ({ error: streamError }) => void errors.push(streamError) });
    await streamed.consumeStream();
    expect(errors.some((streamError) => InvalidConversationError.isInstance(streamError))).toBe(true);
  });

  it('should abort generateText and streamText, stopping the LLM', async () => {
    const aborted = AbortSignal.abort();
    const error = await caught(generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage()], abortSignal: aborted, maxRetries: 0 }));
    expect((error as Error).name).toBe('AbortError');

    const llm = new ReportingChatModel([reply('fishing pole', sentence)], { sleep: 20 });
    const controller = new AbortController();
    const result = streamText({ model: createVqaLlm({ vision, llm })(), messages: [userMessage()], abortSignal: controller.signal, maxRetries: 0 });
    const parts: string[] = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === 'text-delta') controller.abort();
    }
    expect(parts.at(-1)).toBe('abort');
    expect(parts).not.toContain('finish');
    await expect.poll(() => llm.stopped).toBe(1);
  });

  it('should refuse image URLs unless allowed, without downloading them, and fetch them when allowed', async () => {
    let requests = 0;
    const server: Server = createServer((_request, response) => {
      requests += 1;
      response.writeHead(200, { 'content-type': 'image/jpeg' }).end(imageBytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/fishing.jpg`);
      const error = await caught(generateText({ model: createVqaLlm({ vision, llm: 'none' })(), messages: [userMessage(question, url)], maxRetries: 0 }));
      expect(InvalidImageError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain('imageUrls');
      expect(requests).toBe(0);

      const allowed = createVqaLlm({ vision, llm: 'none', imageUrls: { allowHttp: true, allowPrivateAddresses: true } });
      const result = await generateText({ model: allowed(), messages: [userMessage(question, url)], maxRetries: 0 });
      expect(requests).toBe(1);
      expect(result.providerMetadata!.vqaLlm).toMatchObject({ source: 'vqa' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('should take a built chain, and have one model id', async () => {
    const vqaLlm = createVqaLlm({ chain: createVqaChain({ vision, llm: 'none', topK: 2 }) });
    const result = await generateText({ model: vqaLlm.languageModel('vqa-llm'), messages: [userMessage()], maxRetries: 0 });
    expect((result.providerMetadata!.vqaLlm as { candidates: unknown[] }).candidates).toHaveLength(2);
    const perCall = await generateText({ model: vqaLlm(), messages: [userMessage()], providerOptions: { vqaLlm: { topK: 3 } }, maxRetries: 0 });
    expect((perCall.providerMetadata!.vqaLlm as { candidates: unknown[] }).candidates).toHaveLength(3);
    expect(NoSuchModelError.isInstance((() => { try { vqaLlm('gpt-4o'); } catch (error) { return error; } })())).toBe(true);
  });
});

describe('loading the AI SDK adapter', () => {
  // A resolve hook that fails any import of the AI SDK: the main entry must load without it.
  const hook = `data:text/javascript,${encodeURIComponent(
    'export async function resolve(specifier, context, next) { if (specifier === "ai" || specifier.startsWith("@ai-sdk/")) throw new Error("loaded " + specifier); return next(specifier, context); }',
  )}`;

  it('should leave the AI SDK unloaded by the main entry, which loads ChatVqaLlm', async () => {
    const script = `import { register } from 'node:module'; register(${JSON.stringify(hook)}); const main = await import('./dist/src/index.js'); console.log(typeof main.ChatVqaLlm);`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout.trim()).toBe('function');
  });

  const exportsMap = (JSON.parse(readFileSync('package.json', 'utf8')) as { exports?: Record<string, unknown> }).exports ?? {};
  it.skipIf(!('./ai-sdk' in exportsMap))('should load createVqaLlm from the vqa-llm/ai-sdk subpath', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', "const m = await import('vqa-llm/ai-sdk'); console.log(typeof m.createVqaLlm);"]);
    expect(stdout.trim()).toBe('function');
  });
});
