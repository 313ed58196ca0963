import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { VqaStreamChunk } from '../../dist/chains/types.js';
import { createVqaChain } from '../../dist/chains/vqa-chain.js';
import { LocalLlmError } from '../../dist/src/errors/index.js';
import { createLocalChatModel, type ChatLocalLlama } from '../../dist/src/llm/index.js';
import { FakeVision } from '../chains/test-doubles.js';
import { describeGguf, ggufPath, TEST_MODEL_OPTIONS } from './local-gguf.js';

const question = "What is in the man's hand?";
// A short schema keeps the model-level tests quick: random weights fill every string to its maximum.
const shortSchema = {
  type: 'json_schema',
  json_schema: { name: 'short', schema: { type: 'object', properties: { word: { type: 'string', maxLength: 12 } }, required: ['word'] } },
};

describeGguf('the embedded LLM on a tiny GGUF with random weights (real node-llama-cpp)', () => {
  let llm: ChatLocalLlama;

  beforeAll(async () => {
    llm = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS });
    await llm.load();
  });
  afterAll(async () => {
    await llm.dispose();
  });

  it('should answer through the chain with source llm and a reply valid for the answer schema', async () => {
    const chain = createVqaChain({ vision: new FakeVision(), llm });
    const result = await chain.invoke({ image: 'fishing.jpg', question });
    expect(result.fallbackReason).toBeUndefined();
    expect(result.source).toBe('llm');
    // Random weights say nonsense; the grammar alone makes it a usable {shortAnswer, answer}.
    expect(result.shortAnswer.length).toBeGreaterThan(0);
    expect(result.shortAnswer.length).toBeLessThanOrEqual(100);
    expect(result.answer.length).toBeGreaterThan(0);
    expect(result.answer.length).toBeLessThanOrEqual(500);
    expect(result.models.llm).toBe('vqa-llm tiny');
    expect(result.usage?.inputTokens).toBeGreaterThan(100);
    expect(result.usage?.outputTokens).toBeGreaterThan(0);
  });

  it('should stream the answer as several deltas that add up to the result', async () => {
    const chain = createVqaChain({ vision: new FakeVision(), llm });
    const chunks: VqaStreamChunk[] = [];
    for await (const chunk of await chain.stream({ image: 'fishing.jpg', question, history: [{ question: 'Who is there?', shortAnswer: 'a man', answer: 'A man is there.' }] })) chunks.push(chunk);
    const deltas = chunks.flatMap((chunk) => (chunk.type === 'answer-delta' ? [chunk.text] : []));
    const last = chunks.at(-1);
    if (last?.type !== 'result') throw new Error('the stream did not end with a result');
    expect(last.result.source).toBe('llm');
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join('')).toBe(last.result.answer);
  });

  it('should constrain a reply to any JSON schema bound as response_format, and report token usage', async () => {
    const bound = llm.withConfig({ response_format: shortSchema } as never);
    const pieces: string[] = [];
    let usage: { input_tokens: number; output_tokens: number } | undefined;
    for await (const chunk of await bound.stream([new SystemMessage('Reply in JSON.'), new HumanMessage('One word?')])) {
      pieces.push(chunk.text);
      usage = chunk.usage_metadata ?? usage;
    }
    const reply = JSON.parse(pieces.join('')) as { word: string };
    expect(Object.keys(reply)).toEqual(['word']);
    expect(reply.word.length).toBeGreaterThan(0);
    expect(reply.word.length).toBeLessThanOrEqual(12);
    expect(pieces.filter((piece) => piece !== '').length).toBeGreaterThan(1);
    expect(usage?.input_tokens).toBeGreaterThan(0);
    expect(usage?.output_tokens).toBeGreaterThan(0);
  });

  it('should stop when the caller aborts, rejecting with the signal reason, and free its sequence for the next call', async () => {
    // One sequence: a sequence the aborted call kept would leave the next call waiting until its own timeout.
    const single = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, sequences: 1, maxQueue: 1, timeoutMs: 30_000 });
    try {
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      const reading = (async () => {
        for await (const chunk of await single.stream([new HumanMessage('Tell me a long story.')], { signal: controller.signal })) {
          if (chunk.text !== '') controller.abort(reason);
        }
      })();
      await expect(reading).rejects.toThrow('caller gave up');
      await expect(single.invoke([new HumanMessage('Hi')], { signal: AbortSignal.abort(new Error('aborted before the start')) })).rejects.toThrow('aborted before the start');
      const after = await single.withConfig({ response_format: shortSchema } as never).invoke([new HumanMessage('Hi')]);
      expect(JSON.parse(String(after.content))).toHaveProperty('word');
    } finally {
      await single.dispose();
    }
  });

  it('should fall back with llm_timeout when the chain deadline passes during generation', async () => {
    const chain = createVqaChain({ vision: new FakeVision(), llm, llmTimeoutMs: 1, llmRetries: 0 });
    const result = await chain.invoke({ image: 'fishing.jpg', question });
    expect(result.source).toBe('vqa');
    expect(result.fallbackReason?.code).toBe('llm_timeout');
    expect(result.shortAnswer).toBe(result.candidates[0]!.answer);
  });

  it('should reject with a TimeoutError past its own timeoutMs', async () => {
    const hasty = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, timeoutMs: 1 });
    try {
      await hasty.load();
      await expect(hasty.invoke([new HumanMessage('Tell me a long story.')])).rejects.toMatchObject({ name: 'TimeoutError' });
    } finally {
      await hasty.dispose();
    }
  });

  it('should serve concurrent calls from one instance, queueing beyond its sequences and refusing beyond the queue', async () => {
    const pooled = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, sequences: 1, maxQueue: 1 });
    try {
      const bound = pooled.withConfig({ response_format: shortSchema } as never);
      const calls = [bound.invoke([new HumanMessage('A?')]), bound.invoke([new HumanMessage('B?')]), bound.invoke([new HumanMessage('C?')])];
      const settled = await Promise.allSettled(calls);
      const fulfilled = settled.filter((outcome) => outcome.status === 'fulfilled');
      const rejected = settled.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
      expect(fulfilled).toHaveLength(2);
      expect(rejected).toHaveLength(1);
      expect(LocalLlmError.isInstance(rejected[0])).toBe(true);
      expect((rejected[0] as InstanceType<typeof LocalLlmError>).reason).toBe('busy');
    } finally {
      await pooled.dispose();
    }
  });

  it('should keep the event loop turning while it generates', async () => {
    const free = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, maxTokens: 200 });
    try {
      await free.load();
      let ticks = 0;
      let tokens = 0;
      const timer = setInterval(() => (ticks += 1), 1);
      try {
        for await (const chunk of await free.stream([new HumanMessage('Tell me a long story.')])) tokens += chunk.usage_metadata?.output_tokens ?? 0;
      } finally {
        clearInterval(timer);
      }
      // Evaluation runs on llama.cpp's threads: timers fire between tokens, not only after the reply.
      expect(tokens).toBeGreaterThan(20);
      expect(ticks).toBeGreaterThan(5);
    } finally {
      await free.dispose();
    }
  });

  it('should refuse calls after dispose with disposed', async () => {
    const short = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS });
    await short.load();
    await short.dispose();
    await short.dispose();
    await expect(short.invoke([new HumanMessage('Hi')])).rejects.toMatchObject({ name: 'LocalLlmError', reason: 'disposed' });
  });
});
