import { existsSync } from 'node:fs';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVqaChain, VQA_ANSWER_DELTA_EVENT } from '../../dist/chains/vqa-chain.js';
import type { VisionModels } from '../../dist/src/types.js';
import { reply, RunRecorder } from './test-doubles.js';

const runtime = 'dist/src/runtime/vision-models.js';
const image = 'test/fixtures/images/fishing.jpg';
const question = "What is in the man's hand?";

// The tiny models have random weights: their captions and candidates are noise, so this checks the wiring
// (real loading, real concurrency, real cache) and not the answers.
describe.skipIf(!existsSync(runtime) || !existsSync('test/fixtures/models/tiny-blip'))('createVqaChain on the tiny test models', () => {
  let vision: VisionModels;

  beforeAll(async () => {
    const { createVisionModels } = (await import(`../../${runtime}`)) as typeof import('../../dist/src/runtime/vision-models.js');
    vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle', threads: 1 });
  });
  afterAll(async () => {
    await vision?.dispose();
  });

  it('should answer with the top candidate without an LLM', async () => {
    const result = await createVqaChain({ vision, llm: 'none', topK: 3 }).invoke({ image, question });
    expect(result.source).toBe('vqa');
    expect(result.candidates).toHaveLength(3);
    expect(result.shortAnswer).toBe(result.candidates[0]!.answer);
    expect(typeof result.caption).toBe('string');
    expect(result.models).toMatchObject({ caption: expect.any(String), vqa: expect.any(String), llm: null, prompt: 'vqa-v1' });
  });

  it('should hand the real caption and candidates to the LLM and reuse the image cache', async () => {
    const chain = createVqaChain({ vision, llm: new FakeListChatModel({ responses: [reply('fishing pole', 'He holds a fishing pole.')] }) });
    const first = await chain.invoke({ image, question });
    const second = await chain.invoke({ image, question: 'How many people are there?' });
    expect(first.source).toBe('llm');
    expect(second.cached).toEqual({ caption: true, imageEmbeddings: true });
  });

  it('should show every step in streamEvents: vision models, the chat model inside the LLM step, the answer deltas', async () => {
    const sentence = 'He holds a pole.';
    const chain = createVqaChain({ vision, llm: new FakeListChatModel({ responses: [reply('pole', sentence)] }) });
    const recorder = new RunRecorder();
    const seen: { event: string; name: string; data: { text?: string; chunk?: { content?: string } } }[] = [];
    for await (const event of chain.streamEvents({ image, question }, { version: 'v2', callbacks: [recorder] })) seen.push(event);
    // Stream events (tokens, deltas, chunks) aside, the runs open and close in this order.
    const lifecycle = seen.filter((event) => !event.event.endsWith('_stream') && event.event !== 'on_custom_event').map((event) => `${event.event} ${event.name}`);
    expect(lifecycle.filter((line) => /VqaChain|VqaVision|Caption$|VqaCandidates|VqaAnswer|ChatModel/.test(line))).toEqual([
      'on_chain_start VqaChain',
      'on_chain_start VqaVision',
      'on_chain_start Caption',
      'on_chain_start VqaCandidates',
      expect.stringMatching(/^on_chain_end (Caption|VqaCandidates)$/),
      expect.stringMatching(/^on_chain_end (Caption|VqaCandidates)$/),
      'on_chain_end VqaVision',
      'on_chain_start VqaAnswer',
      'on_chat_model_start FakeListChatModel',
      'on_chat_model_end FakeListChatModel',
      'on_chain_end VqaAnswer',
      'on_chain_end VqaChain',
    ]);
    // FakeListChatModel streams its reply a character at a time: the JSON goes to on_chat_model_stream, the sentence
    // to the answer events.
    const tokens = seen.filter((event) => event.event === 'on_chat_model_stream').map((event) => event.data.chunk!.content);
    expect(tokens.join('')).toBe(reply('pole', sentence));
    const deltas = seen.filter((event) => event.event === 'on_custom_event' && event.name === VQA_ANSWER_DELTA_EVENT).map((event) => event.data.text);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(sentence);
    expect(recorder.lineage()).toEqual(expect.arrayContaining(['VqaVision < VqaChain', 'VqaAnswer < VqaChain', 'FakeListChatModel < VqaAnswer']));
  });

  it('should stream vision, deltas and the result', async () => {
    const chain = createVqaChain({ vision, llm: new FakeListChatModel({ responses: [reply('pole', 'He holds a pole.')] }) });
    const types = new Set<string>();
    for await (const chunk of await chain.stream({ image, question })) types.add(chunk.type);
    expect([...types]).toEqual(['vision', 'answer-delta', 'result']);
  });
});
