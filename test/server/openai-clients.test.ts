import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dataUrl, llmReply, startTestServer, type TestServer } from './server-helpers.js';

const question = "What is in the man's hand?";
const sentence = 'The man in the hat is holding a fishing pole.';

describe('the server with real OpenAI clients', () => {
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startTestServer({ fakeLlm: true });
    client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6 }]);
  });

  function userMessage(image = dataUrl('fishing.jpg'), text = question): OpenAI.ChatCompletionMessageParam {
    return { role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: image } }] };
  }

  it('should list the pipeline as the one model', async () => {
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(['vqa-llm']);
  });

  it("should answer the openai SDK with the LLM's sentence and the full result in vqa_llm", async () => {
    const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()] });
    expect(completion.choices[0]!.message).toMatchObject({ role: 'assistant', content: sentence });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
    expect(result).toMatchObject({ source: 'llm', shortAnswer: 'fishing pole', question, models: { caption: 'tiny-blip', vqa: 'tiny-vle', llm: 'fake-llm' } });
    expect(result.candidates.length).toBe(5);
    expect(typeof result.caption).toBe('string');
    expect(result.timings.total).toBeGreaterThan(0);
    // The LLM saw text only: the caption and candidates, never the image.
    expect(JSON.stringify(server.fakeLlm!.requests.at(-1)!.body)).not.toContain('data:image');
  });

  it('should stream to the openai SDK: vision first, then the sentence in pieces, then the result', async () => {
    const stream = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], stream: true });
    const deltas: string[] = [];
    const extras: Record<string, any>[] = [];
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      const extra = (chunk as unknown as { vqa_llm?: Record<string, any> }).vqa_llm;
      if (extra) extras.push(extra);
    }
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(sentence);
    expect(finishReason).toBe('stop');
    expect(extras.map((extra) => extra.type)).toEqual(['vision', 'result']);
    expect(extras[0]!.candidates).toEqual(extras[1]!.candidates);
    expect(extras[1]).toMatchObject({ source: 'llm', answer: sentence });
  });

  it('should reuse the cached image work for a follow-up question in the same conversation', async () => {
    const image = dataUrl('truck.jpg');
    await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage(image, 'How many people are there?')] });
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('red', 'The truck is red.') }]);
    const followUp = await client.chat.completions.create({
      model: 'vqa-llm',
      messages: [userMessage(image, 'How many people are there?'), { role: 'assistant', content: sentence }, { role: 'user', content: 'What color is the truck?' }],
    });
    const result = (followUp as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
    expect(followUp.choices[0]!.message.content).toBe('The truck is red.');
    expect(result.cached).toEqual({ caption: true, imageEmbeddings: true });
    expect(result.question).toBe('What color is the truck?');
    // The earlier turn went to the LLM as history.
    expect(JSON.stringify(server.fakeLlm!.requests.at(-1)!.body.messages)).toContain('How many people are there?');
  });

  it('should fall back to the top VQA candidate when the LLM fails, and still answer with 200', async () => {
    server.fakeLlm!.script([{ kind: 'status', status: 500 }]);
    const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()] });
    const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
    expect(result.source).toBe('vqa');
    expect(result.fallbackReason.code).toBe('llm_http_error');
    expect(completion.choices[0]!.message.content).toBe(result.answer);
  });

  it('should end a stream whose LLM reply breaks off with text that ends in the fallback answer', async () => {
    server.fakeLlm!.script([{ kind: 'cut', content: llmReply('fishing pole', sentence), chunks: 6 }]);
    const stream = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], stream: true });
    let text = '';
    let result: Record<string, any> | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      const extra = (chunk as unknown as { vqa_llm?: Record<string, any> }).vqa_llm;
      if (extra?.type === 'result') result = extra;
    }
    expect(result!.source).toBe('vqa');
    expect(text.endsWith(result!.answer)).toBe(true);
  });

  it("should answer LangChain's ChatOpenAI pointed at the server, plain and streaming", async () => {
    const model = new ChatOpenAI({ model: 'vqa-llm', apiKey: 'unused', configuration: { baseURL: server.baseUrl }, maxRetries: 0, temperature: 0 });
    const message = new HumanMessage({ content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: dataUrl('fishing.jpg') } }] });
    const answer = await model.invoke([message]);
    expect(answer.content).toBe(sentence);

    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6 }]);
    let streamed = '';
    let pieces = 0;
    for await (const chunk of await model.stream([message])) {
      if (typeof chunk.content === 'string' && chunk.content) {
        streamed += chunk.content;
        pieces += 1;
      }
    }
    expect(streamed).toBe(sentence);
    expect(pieces).toBeGreaterThan(1);
  });
});
