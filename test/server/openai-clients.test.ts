import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dataUrl, llmReply, startTestServer, type TestServer } from './server-helpers.js';

const question = "What is in the man's hand?";
const sentence = 'The man in the hat is holding a fishing pole.';
const usage = { prompt_tokens: 321, completion_tokens: 17 };

async function rejection(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

describe('the server with real OpenAI clients', () => {
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    // streamUsage: ChatOpenAI asks the fake LLM for usage in its stream, as a configured client of OpenAI would.
    server = await startTestServer({ fakeLlm: true, llmStreamUsage: true });
    client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6, usage }]);
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
  describe('usage', () => {
    it("should report the LLM's token counts as usage on a chat completion", async () => {
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()] });
      expect(completion.usage).toEqual({ prompt_tokens: 321, completion_tokens: 17, total_tokens: 338 });
      expect((completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm.usage).toEqual({ inputTokens: 321, outputTokens: 17, totalTokens: 338 });
      // The server asked its LLM for usage in the stream, as ChatOpenAI does with streamUsage on.
      expect(server.fakeLlm!.requests.at(-1)!.body.stream_options).toEqual({ include_usage: true });
    });

    it('should end a stream with a usage chunk without choices when stream_options.include_usage is true', async () => {
      const stream = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], stream: true, stream_options: { include_usage: true } });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      const last = chunks.at(-1)!;
      expect(last.choices).toEqual([]);
      expect(last.usage).toEqual({ prompt_tokens: 321, completion_tokens: 17, total_tokens: 338 });
      for (const chunk of chunks.slice(0, -1)) expect(chunk.usage).toBeNull();
      expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
      expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe(sentence);
    });

    it('should send no usage field in a stream that did not ask for it', async () => {
      const stream = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], stream: true });
      for await (const chunk of stream) expect('usage' in chunk).toBe(false);
    });

    it('should count 0 tokens when the LLM failed before it reported any', async () => {
      server.fakeLlm!.script([{ kind: 'status', status: 500 }]);
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()] });
      const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
      expect(result.source).toBe('vqa');
      expect(result.usage).toBeUndefined();
      expect(completion.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    });

    it('should count the tokens of an LLM reply that was spent even when the answer fell back', async () => {
      server.fakeLlm!.script([{ kind: 'content', content: 'I cannot see the picture.', usage: { prompt_tokens: 300, completion_tokens: 8 } }]);
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()] });
      const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
      expect(result.fallbackReason.code).toBe('llm_malformed');
      expect(completion.usage).toEqual({ prompt_tokens: 300, completion_tokens: 8, total_tokens: 308 });
    });
  });

  describe('response_format', () => {
    const Answer = z.object({
      answer: z.string(),
      shortAnswer: z.string(),
      source: z.enum(['llm', 'vqa']),
      candidates: z.array(z.object({ answer: z.string(), score: z.number() })),
    });

    it('should fill a zod schema of result fields for chat.completions.parse()', async () => {
      const completion = await client.chat.completions.parse({ model: 'vqa-llm', messages: [userMessage()], response_format: zodResponseFormat(Answer, 'vqa_answer') });
      const parsed = completion.choices[0]!.message.parsed!;
      const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
      expect(parsed).toEqual({ answer: sentence, shortAnswer: 'fishing pole', source: 'llm', candidates: result.candidates });
      expect(Object.keys(JSON.parse(completion.choices[0]!.message.content!))).toEqual(['answer', 'shortAnswer', 'source', 'candidates']);
    });

    it('should keep only the candidate keys a schema names, in its order', async () => {
      const schema = { type: 'object', properties: { caption: { type: 'string' }, candidates: { type: 'array', items: { type: 'object', properties: { answer: { type: 'string' } } } } } };
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], response_format: { type: 'json_schema', json_schema: { name: 'some', schema } } });
      const content = JSON.parse(completion.choices[0]!.message.content!);
      const result = (completion as unknown as { vqa_llm: Record<string, any> }).vqa_llm;
      expect(content).toEqual({ caption: result.caption, candidates: result.candidates.map((candidate: { answer: string }) => ({ answer: candidate.answer })) });
    });

    it('should answer json_object with the sentence and the short answer', async () => {
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], response_format: { type: 'json_object' } });
      expect(JSON.parse(completion.choices[0]!.message.content!)).toEqual({ answer: sentence, shortAnswer: 'fishing pole' });
    });

    it('should stream JSON content whole, after the result, rather than the sentence', async () => {
      const stream = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], stream: true, response_format: { type: 'json_object' } });
      const deltas: string[] = [];
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
      expect(deltas).toHaveLength(1);
      expect(JSON.parse(deltas[0]!)).toEqual({ answer: sentence, shortAnswer: 'fishing pole' });
    });

    it('should answer response_format text with the sentence', async () => {
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], response_format: { type: 'text' } });
      expect(completion.choices[0]!.message.content).toBe(sentence);
    });
  });

  describe('parameters the server cannot honour', () => {
    const weatherTool: OpenAI.ChatCompletionTool = { type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } };
    const schema = (properties: Record<string, unknown>): Record<string, unknown> => ({ type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object', properties } } });
    const cases: { name: string; body: Record<string, unknown>; param: string }[] = [
      { name: 'tools', body: { tools: [weatherTool] }, param: 'tools' },
      { name: 'tool_choice auto', body: { tool_choice: 'auto' }, param: 'tool_choice' },
      { name: 'tool_choice required', body: { tool_choice: 'required' }, param: 'tool_choice' },
      { name: 'functions', body: { functions: [weatherTool.function] }, param: 'functions' },
      { name: 'n = 2', body: { n: 2 }, param: 'n' },
      { name: 'logprobs', body: { logprobs: true }, param: 'logprobs' },
      { name: 'top_logprobs', body: { logprobs: false, top_logprobs: 3 }, param: 'top_logprobs' },
      { name: 'audio output', body: { modalities: ['text', 'audio'] }, param: 'modalities' },
      { name: 'web search', body: { web_search_options: {} }, param: 'web_search_options' },
      { name: 'an unknown response_format type', body: { response_format: { type: 'grammar', grammar: 'root ::= "a"' } }, param: 'response_format.type' },
      { name: 'a schema that is not an object', body: { response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'string' } } } }, param: 'response_format.json_schema.schema' },
      { name: 'a property the server cannot fill', body: { response_format: schema({ answer: { type: 'string' }, color: { type: 'string' } }) }, param: 'response_format.json_schema.schema.properties.color' },
      { name: 'a property of another type', body: { response_format: schema({ answer: { type: 'number' } }) }, param: 'response_format.json_schema.schema.properties.answer' },
      { name: 'a constraint the server does not check', body: { response_format: schema({ shortAnswer: { type: 'string', maxLength: 5 } }) }, param: 'response_format.json_schema.schema.properties.shortAnswer.maxLength' },
      { name: 'a source enum that leaves one value out', body: { response_format: schema({ source: { type: 'string', enum: ['llm'] } }) }, param: 'response_format.json_schema.schema.properties.source.enum' },
      { name: 'an unknown candidate key', body: { response_format: schema({ candidates: { type: 'array', items: { type: 'object', properties: { label: { type: 'string' } } } } }) }, param: 'response_format.json_schema.schema.properties.candidates.items.properties.label' },
    ];

    let requestsBefore = 0;
    beforeEach(() => {
      requestsBefore = server.fakeLlm!.requests.length;
    });

    it.each(cases)('should refuse $name with a 400 naming $param', async ({ body, param }) => {
      const error = await rejection(client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], ...body } as OpenAI.ChatCompletionCreateParamsNonStreaming));
      expect(error.status).toBe(400);
      expect(error.param).toBe(param);
      expect(error.type).toBe('invalid_request_error');
      expect(server.fakeLlm!.requests.length).toBe(requestsBefore);
    });

    it("should accept an empty tool list and tool_choice 'none'", async () => {
      const completion = await client.chat.completions.create({ model: 'vqa-llm', messages: [userMessage()], tools: [], tool_choice: 'none' });
      expect(completion.choices[0]!.message.content).toBe(sentence);
    });
  });
});

describe('the server with an LLM client that does not ask for usage', () => {
  let server: TestServer;

  beforeAll(async () => {
    // createChatModel() leaves ChatOpenAI's streamUsage off; this fake LLM sends usage unasked, as some servers do.
    server = await startTestServer({ fakeLlm: true, fakeLlmUsage: 'always' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should report the usage an LLM sends unasked, counted once', async () => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6, usage }]);
    const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'vqa-llm',
      messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: dataUrl('fishing.jpg') } }] }],
    });
    expect(server.fakeLlm!.requests.at(-1)!.body.stream_options).toBeUndefined();
    expect(completion.usage).toEqual({ prompt_tokens: 321, completion_tokens: 17, total_tokens: 338 });
  });
});
