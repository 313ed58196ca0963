import { HumanMessage } from '@langchain/core/messages';
import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dataUrl, llmReply, postJson, startTestServer, type TestServer } from './server-helpers.js';

const question = "What is in the man's hand?";
const sentence = 'The man in the hat is holding a fishing pole.';
const usage = { prompt_tokens: 321, completion_tokens: 17 };

type Input = OpenAI.Responses.ResponseInput;

function userInput(image = dataUrl('fishing.jpg'), text = question): Input {
  return [{ role: 'user', content: [{ type: 'input_text', text }, { type: 'input_image', image_url: image, detail: 'auto' }] }];
}

function resultOf(response: unknown): Record<string, any> {
  return (response as { vqa_llm: Record<string, any> }).vqa_llm;
}

describe('POST /v1/responses', () => {
  let server: TestServer;
  let client: OpenAI;

  beforeAll(async () => {
    server = await startTestServer({ fakeLlm: true, llmStreamUsage: true });
    client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('fishing pole', sentence), chunks: 6, usage }]);
  });

  it('should answer responses.create with one assistant message, output_text, usage and the result in vqa_llm', async () => {
    const response = await client.responses.create({ model: 'vqa-llm', input: userInput(), instructions: 'Answer like a pirate.' });
    expect(response).toMatchObject({ object: 'response', status: 'completed', model: 'vqa-llm', error: null, instructions: 'Answer like a pirate.', store: false });
    expect(response.id).toMatch(/^resp_/);
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: sentence, annotations: [] }] });
    expect(response.output_text).toBe(sentence);
    expect(response.usage).toMatchObject({ input_tokens: 321, output_tokens: 17, total_tokens: 338 });
    expect(resultOf(response)).toMatchObject({ source: 'llm', shortAnswer: 'fishing pole', question, usage: { inputTokens: 321, outputTokens: 17, totalTokens: 338 } });
    // Instructions, like system messages, do not reach the LLM: the pipeline's prompt does.
    expect(JSON.stringify(server.fakeLlm!.requests.at(-1)!.body)).not.toContain('pirate');
  });

  it('should stream the event sequence the SDKs expect, numbered from 0, with the sentence in deltas', async () => {
    const stream = await client.responses.create({ model: 'vqa-llm', input: userInput(), stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = events.map((event) => event.type);
    const deltas = events.filter((event) => event.type === 'response.output_text.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...deltas.map(() => 'response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_event, index) => index));
    expect(deltas.map((event) => event.delta).join('')).toBe(sentence);
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(completed.response.output_text).toBe(sentence);
    expect(completed.response.usage).toMatchObject({ input_tokens: 321, output_tokens: 17, total_tokens: 338 });
    expect(resultOf(completed.response)).toMatchObject({ source: 'llm', answer: sentence });
    // Caption and candidates come early, beside the in_progress event.
    expect(resultOf(events[1])).toMatchObject({ type: 'vision', candidates: resultOf(completed.response).candidates });
  });

  it("should build the final response with the openai SDK's responses.stream() accumulator", async () => {
    const stream = client.responses.stream({ model: 'vqa-llm', input: userInput() });
    let printed = '';
    stream.on('response.output_text.delta', (event) => {
      printed += event.delta;
    });
    const final = await stream.finalResponse();
    expect(printed).toBe(sentence);
    expect(final.output_text).toBe(sentence);
    expect(final.status).toBe('completed');
  });

  it('should accept the input as one easy message with string content and the image as a separate part', async () => {
    const response = await client.responses.create({
      model: 'vqa-llm',
      input: [
        { role: 'developer', content: 'Be brief.' },
        { type: 'message', role: 'user', content: [{ type: 'input_image', image_url: dataUrl('fishing.jpg'), detail: 'low' }] },
        { role: 'user', content: question },
      ],
    });
    expect(response.output_text).toBe(sentence);
    expect(resultOf(response).question).toBe(question);
  });

  it('should pass earlier turns sent as assistant output_text to the LLM as history', async () => {
    server.fakeLlm!.script([{ kind: 'content', content: llmReply('red', 'The truck is red.') }]);
    const response = await client.responses.create({
      model: 'vqa-llm',
      input: [
        ...userInput(dataUrl('truck.jpg'), 'How many people are there?'),
        { type: 'message', role: 'assistant', id: 'msg_1', status: 'completed', content: [{ type: 'output_text', text: 'There are two people.', annotations: [] }] },
        { role: 'user', content: [{ type: 'input_text', text: 'What color is the truck?' }] },
      ],
    });
    expect(response.output_text).toBe('The truck is red.');
    expect(resultOf(response).question).toBe('What color is the truck?');
    expect(JSON.stringify(server.fakeLlm!.requests.at(-1)!.body.messages)).toContain('How many people are there?');
  });

  it('should fill a zod text.format schema for responses.parse()', async () => {
    const Answer = z.object({ shortAnswer: z.string(), caption: z.string(), source: z.enum(['llm', 'vqa']) });
    const response = await client.responses.parse({ model: 'vqa-llm', input: userInput(), text: { format: zodTextFormat(Answer, 'vqa_answer') } });
    expect(response.output_parsed).toEqual({ shortAnswer: 'fishing pole', caption: resultOf(response).caption, source: 'llm' });
    expect(response.text?.format?.type).toBe('json_schema');
  });

  it('should answer text.format json_object with the sentence and the short answer', async () => {
    const response = await client.responses.create({ model: 'vqa-llm', input: userInput(), text: { format: { type: 'json_object' } } });
    expect(JSON.parse(response.output_text)).toEqual({ answer: sentence, shortAnswer: 'fishing pole' });
  });

  it('should refuse a request without an image with missing_image naming input', async () => {
    const error = await client.responses.create({ model: 'vqa-llm', input: question }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('missing_image');
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe('input');
  });

  it('should apply the chat route limits to the question before any model work', async () => {
    const { status, body } = await postJson(`${server.baseUrl}/responses`, { model: 'vqa-llm', input: userInput(dataUrl('fishing.jpg'), 'why '.repeat(400)) });
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_question');
  });

  it('should answer an unknown model with 404 model_not_found', async () => {
    const { status, body } = await postJson(`${server.baseUrl}/responses`, { model: 'gpt-4o', input: userInput() });
    expect(status).toBe(404);
    expect(body.error).toMatchObject({ code: 'model_not_found', param: 'model', type: 'not_found_error' });
  });

  describe('parameters the server cannot honour', () => {
    const cases: { name: string; body: Record<string, unknown>; param: string }[] = [
      { name: 'tools', body: { tools: [{ type: 'function', name: 'weather', parameters: { type: 'object', properties: {} }, strict: true }] }, param: 'tools' },
      { name: 'tool_choice auto', body: { tool_choice: 'auto' }, param: 'tool_choice' },
      { name: 'a built-in tool', body: { tools: [{ type: 'web_search' }] }, param: 'tools' },
      { name: 'previous_response_id', body: { previous_response_id: 'resp_123' }, param: 'previous_response_id' },
      { name: 'conversation', body: { conversation: 'conv_123' }, param: 'conversation' },
      { name: 'background', body: { background: true }, param: 'background' },
      { name: 'top_logprobs', body: { top_logprobs: 2 }, param: 'top_logprobs' },
      { name: 'logprobs in include', body: { include: ['message.output_text.logprobs'] }, param: 'include' },
      { name: 'an unknown text.format type', body: { text: { format: { type: 'grammar' } } }, param: 'text.format.type' },
      {
        name: 'a schema property the server cannot fill',
        body: { text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { mood: { type: 'string' } } } } } },
        param: 'text.format.schema.properties.mood',
      },
      { name: 'an item reference', body: { input: [...userInput(), { type: 'item_reference', id: 'msg_1' }] }, param: 'input[1]' },
      { name: 'a function call output', body: { input: [...userInput(), { type: 'function_call_output', call_id: 'call_1', output: '{}' }] }, param: 'input[1].type' },
      { name: 'an image by file_id', body: { input: [{ role: 'user', content: [{ type: 'input_text', text: question }, { type: 'input_image', file_id: 'file_1', detail: 'auto' }] }] }, param: 'input[0].content[1].file_id' },
      { name: 'a file part', body: { input: [{ role: 'user', content: [{ type: 'input_file', file_data: 'data:application/pdf;base64,AA==' }] }] }, param: 'input[0].content[0].type' },
    ];

    it.each(cases)('should refuse $name with a 400 naming $param', async ({ body, param }) => {
      const before = server.fakeLlm!.requests.length;
      const error = await client.responses.create({ model: 'vqa-llm', input: userInput(), ...body } as OpenAI.Responses.ResponseCreateParamsNonStreaming).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe(param);
      expect(server.fakeLlm!.requests.length).toBe(before);
    });
  });

  describe("LangChain's ChatOpenAI with useResponsesApi", () => {
    const message = (): HumanMessage => new HumanMessage({ content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: dataUrl('fishing.jpg') } }] });
    const model = (): ChatOpenAI => new ChatOpenAI({ model: 'vqa-llm', apiKey: 'unused', configuration: { baseURL: server.baseUrl }, maxRetries: 0, useResponsesApi: true });

    it('should answer invoke() with the sentence and usage_metadata', async () => {
      const answer = await model().invoke([message()]);
      expect(answer.text).toBe(sentence);
      expect(answer.usage_metadata).toMatchObject({ input_tokens: 321, output_tokens: 17, total_tokens: 338 });
      expect(server.logs.some((line) => line.includes('"url":"/v1/responses"'))).toBe(true);
    });

    it('should stream the sentence in pieces', async () => {
      let streamed = '';
      let pieces = 0;
      let usageMetadata: unknown;
      for await (const chunk of await model().stream([message()])) {
        if (chunk.text) {
          streamed += chunk.text;
          pieces += 1;
        }
        usageMetadata ??= chunk.usage_metadata;
      }
      expect(streamed).toBe(sentence);
      expect(pieces).toBeGreaterThan(1);
      expect(usageMetadata).toMatchObject({ input_tokens: 321, output_tokens: 17, total_tokens: 338 });
    });

    it('should fill withStructuredOutput() from the result fields', async () => {
      const structured = model().withStructuredOutput(z.object({ answer: z.string(), shortAnswer: z.string() }), { name: 'vqa_answer' });
      expect(await structured.invoke([message()])).toEqual({ answer: sentence, shortAnswer: 'fishing pole' });
    });
  });
});

describe('streams past their deadline', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ fakeLlm: true, requestTimeoutMs: 3000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('should end a stream whose deadline passes with an error event and response.failed', async () => {
    // One character every 100 ms: the reply outlasts the deadline by far, whatever the machine's speed.
    server.fakeLlm!.script([{ kind: 'drip', content: llmReply('fishing pole', sentence.repeat(4)), intervalMs: 100 }]);
    const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const stream = await client.responses.create({ model: 'vqa-llm', input: userInput(), stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((event) => event.type).slice(-2)).toEqual(['error', 'response.failed']);
    expect(events.at(-2)).toMatchObject({ code: 'deadline_exceeded' });
    expect((events.at(-1) as OpenAI.Responses.ResponseFailedEvent).response).toMatchObject({ status: 'failed', error: { code: 'deadline_exceeded' } });
  });

  it('should end a chat-completions stream whose deadline passes with an error the openai SDK raises', async () => {
    server.fakeLlm!.script([{ kind: 'drip', content: llmReply('fishing pole', sentence.repeat(4)), intervalMs: 100 }]);
    const client = new OpenAI({ baseURL: server.baseUrl, apiKey: 'unused', maxRetries: 0 });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: dataUrl('fishing.jpg') } }] }];
    const stream = await client.chat.completions.create({ model: 'vqa-llm', messages, stream: true });
    const error = await (async () => {
      for await (const _chunk of stream);
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('deadline_exceeded');
  });
});
