import { join } from 'node:path';
import { AIMessage, HumanMessage, SystemMessage } from '@langchain/core/messages';
import { expect, it } from 'vitest';
import { createVqaChain } from '../../dist/chains/vqa-chain.js';
import { LocalLlmError } from '../../dist/src/errors/index.js';
import { createChatModel, createLocalChatModel, type ChatLocalLlama } from '../../dist/src/llm/index.js';
import { FakeVision } from '../chains/test-doubles.js';
import { describeGguf, ggufPath, TEST_MODEL_OPTIONS } from './local-gguf.js';

const question = "What is in the man's hand?";

async function loadError(model: ChatLocalLlama): Promise<InstanceType<typeof LocalLlmError>> {
  try {
    await model.load();
  } catch (error) {
    if (LocalLlmError.isInstance(error)) return error;
    throw error;
  } finally {
    await model.dispose();
  }
  throw new Error('the model loaded');
}

it('should say how to install node-llama-cpp when it is missing', async () => {
  const missing = Object.assign(new Error("Cannot find package 'node-llama-cpp'"), { code: 'ERR_MODULE_NOT_FOUND' });
  const error = await loadError(createLocalChatModel({ model: 'any.gguf', importModule: () => Promise.reject(missing) }));
  expect(error.reason).toBe('runtime_missing');
  expect(error.message).toContain('npm install node-llama-cpp');
});

it('should fall back to the VQA answer with the reason when the model file is missing, saying how to get it', async () => {
  const llm = createChatModel({ provider: 'local', modelsDir: '/nowhere/models', env: {} });
  const result = await createVqaChain({ vision: new FakeVision(), llm, llmRetries: 0 }).invoke({ image: 'fishing.jpg', question });
  expect(result.source).toBe('vqa');
  expect(result.fallbackReason?.code).toBe('llm_error');
  expect(result.fallbackReason?.message).toContain('/nowhere/models/qwen2.5-1.5b-instruct-q4_k_m.gguf');
  expect(result.fallbackReason?.message).toContain('curl -L');
});

describeGguf('bad GGUF files and prompts for the embedded LLM', () => {
  it.each([
    ['not-gguf.gguf', 'invalid_gguf', /not a readable GGUF/],
    ['truncated.gguf', 'model_corrupt', /truncated|damaged|not within the file bounds/],
    ['unknown-arch.gguf', 'unsupported_architecture', /vqa-llm-unknown/],
    ['no-template.gguf', 'no_chat_template', /no chat template/],
  ])('should refuse %s with reason %s', async (file, reason, message) => {
    const error = await loadError(createLocalChatModel({ model: ggufPath(file), ...TEST_MODEL_OPTIONS }));
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
    expect(error.hint).toBeTruthy();
  });

  it('should refuse a missing file with model_not_found and the hint it was given', async () => {
    const error = await loadError(createLocalChatModel({ model: join(ggufPath('.'), 'absent.gguf'), missingHint: 'Run the download.' }));
    expect(error.reason).toBe('model_not_found');
    expect(error.message).toContain('Run the download.');
  });

  it('should answer a conversation longer than its context by dropping the oldest turns, and say so', async () => {
    const llm = createLocalChatModel({ model: ggufPath('tiny.gguf'), threads: 1, contextSize: 256, maxTokens: 8 });
    try {
      const turns = Array.from({ length: 30 }, (_, index) => [new HumanMessage(`Question number ${index} about the photo?`), new AIMessage(`Answer number ${index}.`)]).flat();
      const reply = await llm.invoke([new SystemMessage('Be brief.'), ...turns, new HumanMessage('And now?')]);
      expect(reply.response_metadata.droppedHistoryItems).toBeGreaterThan(0);
      expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
    } finally {
      await llm.dispose();
    }
  });

  it('should fail with context_overflow when the question alone does not fit, and the chain fall back with that reason', async () => {
    const llm = createLocalChatModel({ model: ggufPath('tiny.gguf'), threads: 1, contextSize: 256, maxTokens: 8 });
    try {
      const huge = 'why '.repeat(400);
      await expect(llm.invoke([new HumanMessage(huge)])).rejects.toMatchObject({ name: 'LocalLlmError', reason: 'context_overflow' });
      const result = await createVqaChain({ vision: new FakeVision(), llm, llmRetries: 0, maxQuestionLength: 2000 }).invoke({ image: 'fishing.jpg', question: `${huge}?` });
      expect(result.source).toBe('vqa');
      expect(result.fallbackReason?.message).toMatch(/does not fit the local model's context/);
      // The model is still there for the next, shorter question.
      const next = await llm.invoke([new HumanMessage('Hi?')]);
      expect(next.usage_metadata?.output_tokens).toBeGreaterThan(0);
    } finally {
      await llm.dispose();
    }
  });
});
