import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defaultStructuredOutput } from '../../dist/chains/llm-step.js';
import { LocalLlmError } from '../../dist/src/errors/index.js';
import { ChatLocalLlama, createChatModel, createLocalChatModel, locateLocalModel, resolveLlmProvider } from '../../dist/src/llm/index.js';
import { readResponseFormat } from '../../dist/src/llm/local/response-format.js';
import { SlotPool } from '../../dist/src/llm/local/slot-pool.js';
import { toChatHistory } from '../../dist/src/llm/local/to-chat-history.js';

const bounds = { minLength: 1, maxLength: 500 };

describe('readResponseFormat', () => {
  it('should turn a zod schema into a grammar schema with every open string bounded', () => {
    const format = readResponseFormat({ type: 'json_schema', json_schema: { name: 'a', schema: z.object({ shortAnswer: z.string(), answer: z.string().max(40) }) } }, bounds);
    expect(format).toMatchObject({
      type: 'json-schema',
      schema: { type: 'object', properties: { shortAnswer: { type: 'string', minLength: 1, maxLength: 500 }, answer: { type: 'string', minLength: 1, maxLength: 40 } } },
    });
  });

  it('should keep a JSON schema\'s own tighter bounds and read enums, arrays and unions', () => {
    const format = readResponseFormat(
      {
        type: 'json_schema',
        json_schema: {
          schema: {
            type: 'object',
            properties: { kind: { enum: ['a', 'b'] }, tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 3 }, score: { type: ['number', 'null'] } },
          },
        },
      },
      bounds,
    );
    expect(format).toMatchObject({
      schema: {
        properties: {
          kind: { enum: ['a', 'b'] },
          tags: { type: 'array', items: { type: 'string', maxLength: 5 }, maxItems: 3 },
          score: { oneOf: [{ type: 'number' }, { type: 'null' }] },
        },
      },
    });
  });

  it('should read json_object and text, and refuse what a grammar cannot express, naming the property', () => {
    expect(readResponseFormat({ type: 'json_object' }, bounds)).toEqual({ type: 'json' });
    expect(readResponseFormat(undefined, bounds)).toEqual({ type: 'text' });
    expect(() => readResponseFormat({ type: 'json_schema', json_schema: { schema: { type: 'object', properties: { any: {} } } } }, bounds)).toThrow(/the reply\.any/);
    expect(() => readResponseFormat({ type: 'xml' }, bounds)).toThrow(/json_schema/);
  });
});

describe('toChatHistory', () => {
  it('should merge system messages, map roles and end with an empty reply', () => {
    const history = toChatHistory([new SystemMessage('A.'), new SystemMessage('B.'), new HumanMessage('Q1'), new AIMessage('R1'), new HumanMessage('Q2')]);
    expect(history).toEqual([
      { type: 'system', text: 'A.\n\nB.' },
      { type: 'user', text: 'Q1' },
      { type: 'model', response: ['R1'] },
      { type: 'user', text: 'Q2' },
      { type: 'model', response: [] },
    ]);
  });

  it('should read the text parts of multimodal content and refuse tool messages', () => {
    expect(toChatHistory([new HumanMessage({ content: [{ type: 'text', text: 'What is it?' }, { type: 'image_url', image_url: { url: 'data:,' } }] })])[0]).toEqual({ type: 'user', text: 'What is it?' });
    expect(() => toChatHistory([new HumanMessage('Q'), new ToolMessage({ content: 'x', tool_call_id: '1' })])).toThrow(/tool/);
    expect(() => toChatHistory([new SystemMessage('only instructions')])).toThrow(/user message/);
  });
});

describe('SlotPool', () => {
  it('should lend the slot freed last first, queue in order, and refuse beyond the queue with busy', async () => {
    const pool = new SlotPool({ slots: ['a', 'b'], maxQueue: 1 });
    const first = await pool.acquire();
    const second = await pool.acquire();
    expect([first.slot, second.slot]).toEqual(['b', 'a']);
    const waiting = pool.acquire();
    await expect(pool.acquire()).rejects.toMatchObject({ name: 'LocalLlmError', reason: 'busy' });
    first.release();
    first.release();
    expect((await waiting).slot).toBe('b');
    second.release();
    expect((await pool.acquire()).slot).toBe('a');
  });

  it('should take an aborted waiter out of the queue and reject waiters on dispose', async () => {
    const pool = new SlotPool({ slots: ['a'], maxQueue: 2 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const aborted = pool.acquire(controller.signal);
    const disposed = pool.acquire();
    controller.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(pool.queued).toBe(1);
    pool.dispose();
    await expect(disposed).rejects.toMatchObject({ reason: 'disposed' });
    held.release();
    await expect(pool.acquire()).rejects.toMatchObject({ reason: 'disposed' });
  });
});

describe('choosing the local model', () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vqa-llm-local-'));
    await writeFile(join(folder, 'small.gguf'), 'GGUF');
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('should look for the default model in the models folder and say how to download it', () => {
    const location = locateLocalModel({ modelsDir: folder, env: {} });
    expect(location).toMatchObject({ path: join(folder, 'qwen2.5-1.5b-instruct-q4_k_m.gguf'), exists: false, isDefault: true });
    expect(location.hint).toContain('https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf');
    expect(locateLocalModel({ modelsDir: folder, env: { HF_ENDPOINT: 'https://mirror.example/' } }).hint).toContain('https://mirror.example/Qwen/');
  });

  it('should take a path, a file name in the models folder, and say how to fetch a hub id not downloaded yet', () => {
    expect(locateLocalModel({ model: join(folder, 'small.gguf'), env: {} })).toMatchObject({ exists: true, isDefault: false });
    expect(locateLocalModel({ model: 'small', modelsDir: folder, env: {} })).toMatchObject({ path: join(folder, 'small.gguf'), exists: true });
    expect(locateLocalModel({ model: 'small.gguf', modelsDir: folder, env: {} }).exists).toBe(true);
    const hub = locateLocalModel({ model: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF@v1', modelsDir: folder, cacheDir: join(folder, 'no-cache'), env: {} });
    expect(hub).toMatchObject({ exists: false, hub: { repo: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF', revision: 'v1' } });
    expect(hub.hint).toContain('vqa-llm models fetch Qwen/Qwen2.5-1.5B-Instruct-GGUF@v1');
    expect(locateLocalModel({ model: 'owner/repo/sub/model-q4_k_m.gguf', modelsDir: folder, env: {} }).hub).toEqual({ repo: 'owner/repo', file: 'sub/model-q4_k_m.gguf', revision: 'main' });
  });

  it('should resolve auto to openai when an endpoint is configured, else local when the file is there, else none', () => {
    expect(resolveLlmProvider('auto', { OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' }, { localModel: join(folder, 'small.gguf') })).toBe('openai');
    expect(resolveLlmProvider('auto', {}, { localModel: join(folder, 'small.gguf') })).toBe('local');
    expect(resolveLlmProvider('auto', {}, { modelsDir: folder })).toBe('none');
    expect(resolveLlmProvider('auto', { VQA_LLM_LOCAL_MODEL: join(folder, 'small.gguf') })).toBe('local');
    expect(resolveLlmProvider('local', {})).toBe('local');
  });

  it('should build the local model lazily from createChatModel, with the chain constraining its replies by schema', () => {
    const llm = createChatModel({ provider: 'local', localModel: join(folder, 'small.gguf'), env: {} });
    expect(llm).toBeInstanceOf(ChatLocalLlama);
    expect(defaultStructuredOutput(llm as ChatLocalLlama)).toBe('json-schema');
    expect((llm as ChatLocalLlama).modelPath).toBe(join(folder, 'small.gguf'));
    expect(() => createLocalChatModel({ model: '' })).toThrow(/model/);
    expect(() => createLocalChatModel({ model: 'x.gguf', sequences: 0 })).toThrow(/sequences/);
  });
});
