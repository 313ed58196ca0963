import { readFileSync } from 'node:fs';
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, generateText, Output, streamText, tool, type ModelMessage } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fixtureImage } from '../helpers/fixtures.js';
import { llmReply, startTestServer, type TestServer } from './server-helpers.js';

const question = "What is in the man's hand?";
const sentence = 'The man in the hat is holding a fishing pole.';
const usage = { prompt_tokens: 321, completion_tokens: 17 };

function userMessage(text = question): ModelMessage {
  return { role: 'user', content: [{ type: 'text', text }, { type: 'image', image: readFileSync(fixtureImage('fishing.jpg')), mediaType: 'image/jpeg' }] };
}

describe('the server with the Vercel AI SDK', () => {
  let server: TestServer;
  let openai: ReturnType<typeof createOpenAI>;

  beforeAll(async () => {
    server = await startTestServer({ fakeLlm: true, llmStreamUsage: true });
    openai = createOpenAI({ baseURL: server.baseUrl, apiKey: 'unused' });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6, usage }]);
  });

  function requestedPaths(): string[] {
    return server.logs.flatMap((line) => (line.includes('"msg":"incoming request"') ? [JSON.parse(line).req.url as string] : []));
  }

  it("should answer generateText with openai('vqa-llm') through the Responses API, with usage", async () => {
    const before = requestedPaths().length;
    const result = await generateText({ model: openai('vqa-llm'), messages: [userMessage()], maxRetries: 0 });
    expect(result.text).toBe(sentence);
    expect(result.usage).toMatchObject({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
    expect(result.finishReason).toBe('stop');
    expect(requestedPaths().slice(before)).toEqual(['/v1/responses']);
  });

  it("should answer generateText with openai.chat('vqa-llm'), with usage", async () => {
    const before = requestedPaths().length;
    const result = await generateText({ model: openai.chat('vqa-llm'), messages: [userMessage()], maxRetries: 0 });
    expect(result.text).toBe(sentence);
    expect(result.usage).toMatchObject({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
    expect(requestedPaths().slice(before)).toEqual(['/v1/chat/completions']);
  });

  it.each([
    ['the Responses API', (provider: ReturnType<typeof createOpenAI>) => provider('vqa-llm')],
    ['chat completions', (provider: ReturnType<typeof createOpenAI>) => provider.chat('vqa-llm')],
  ])('should stream with streamText over %s and report usage at the end', async (_name, model) => {
    const result = streamText({ model: model(openai), messages: [userMessage()], maxRetries: 0 });
    const pieces: string[] = [];
    for await (const piece of result.textStream) pieces.push(piece);
    expect(pieces.join('')).toBe(sentence);
    expect(pieces.length).toBeGreaterThan(1);
    expect(await result.usage).toMatchObject({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
  });

  it.each([
    ['the Responses API', (provider: ReturnType<typeof createOpenAI>) => provider('vqa-llm')],
    ['chat completions', (provider: ReturnType<typeof createOpenAI>) => provider.chat('vqa-llm')],
  ])('should fill Output.object from the result fields over %s', async (_name, model) => {
    const schema = z.object({ shortAnswer: z.string(), answer: z.string(), candidates: z.array(z.object({ answer: z.string(), score: z.number() })) });
    const result = await generateText({ model: model(openai), messages: [userMessage()], output: Output.object({ schema }), maxRetries: 0 });
    expect(result.output.shortAnswer).toBe('fishing pole');
    expect(result.output.answer).toBe(sentence);
    expect(result.output.candidates).toHaveLength(5);
  });

  it('should answer a follow-up question when the earlier answer is sent as text (store: false)', async () => {
    const providerOptions = { openai: { store: false } };
    const first = await generateText({ model: openai('vqa-llm'), messages: [userMessage()], providerOptions, maxRetries: 0 });
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('a hat', 'He is wearing a hat.') }]);
    const followUp = await generateText({
      model: openai('vqa-llm'),
      messages: [userMessage(), ...first.response.messages, { role: 'user', content: 'What is he wearing?' }],
      providerOptions,
      maxRetries: 0,
    });
    expect(followUp.text).toBe('He is wearing a hat.');
    expect(JSON.stringify(server.fakeLlm!.requests.at(-1)!.body.messages)).toContain(question);
  });

  it('should refuse a follow-up that refers to a stored answer by id, saying that nothing is stored', async () => {
    const first = await generateText({ model: openai('vqa-llm'), messages: [userMessage()], maxRetries: 0 });
    const error = await generateText({
      model: openai('vqa-llm'),
      messages: [userMessage(), ...first.response.messages, { role: 'user', content: 'What is he wearing?' }],
      maxRetries: 0,
    }).catch((caught: unknown) => caught);
    expect(APICallError.isInstance(error)).toBe(true);
    expect((error as APICallError).statusCode).toBe(400);
    expect((error as APICallError).message).toContain('stores no responses');
  });

  it('should refuse tools with a 400 rather than answer as if no tool existed', async () => {
    const weather = tool({ description: 'The weather in a city', inputSchema: z.object({ city: z.string() }), execute: async () => 'sunny' });
    for (const model of [openai('vqa-llm'), openai.chat('vqa-llm')]) {
      const error = await generateText({ model, messages: [userMessage()], tools: { weather }, maxRetries: 0 }).catch((caught: unknown) => caught);
      expect(APICallError.isInstance(error)).toBe(true);
      expect((error as APICallError).statusCode).toBe(400);
      expect(JSON.parse((error as APICallError).responseBody!).error.param).toBe('tools');
    }
  });
});
