import { ChatOpenAI } from '@langchain/openai';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../dist/src/errors/index.js';
import { CHAT_MODEL_DEFAULTS, createChatModel, resolveLlmProvider } from '../../dist/src/llm/index.js';

describe('createChatModel', () => {
  it('should return none when asked, or when auto finds no endpoint', () => {
    expect(createChatModel({ provider: 'none' })).toBe('none');
    expect(createChatModel({ env: {} })).toBe('none');
  });

  it('should pick openai in auto mode when a key or base URL is set', () => {
    expect(resolveLlmProvider('auto', { OPENAI_API_KEY: 'sk-test' })).toBe('openai');
    expect(resolveLlmProvider('auto', { OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1' })).toBe('openai');
    expect(resolveLlmProvider('auto', { OPENAI_API_KEY: '  ' })).toBe('none');
  });

  it('should read the model, base URL and key from the environment, with explicit timeout and retries', () => {
    const model = createChatModel({ provider: 'openai', env: { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: 'http://127.0.0.1:1234/v1', VQA_LLM_MODEL: 'qwen2.5' } });
    expect(model).toBeInstanceOf(ChatOpenAI);
    const chat = model as ChatOpenAI;
    expect(chat.model).toBe('qwen2.5');
    expect(chat.apiKey).toBe('sk-test');
    expect(chat.timeout).toBe(CHAT_MODEL_DEFAULTS.timeoutMs);
    expect(chat.caller.maxRetries).toBe(CHAT_MODEL_DEFAULTS.maxRetries);
    expect(chat.temperature).toBe(0);
  });

  it('should let options win over the environment', () => {
    const chat = createChatModel({ provider: 'openai', model: 'm', apiKey: 'k', timeoutMs: 5, maxRetries: 0, env: { OPENAI_API_KEY: 'sk-env', VQA_LLM_MODEL: 'env-model' } }) as ChatOpenAI;
    expect([chat.model, chat.apiKey, chat.timeout, chat.caller.maxRetries]).toEqual(['m', 'k', 5, 0]);
  });

  it('should ask for streamed token usage from api.openai.com, and from a custom server only when told to', () => {
    expect((createChatModel({ provider: 'openai', env: { OPENAI_API_KEY: 'sk' } }) as ChatOpenAI).streamUsage).toBe(true);
    expect((createChatModel({ provider: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', env: {} }) as ChatOpenAI).streamUsage).toBe(false);
    expect((createChatModel({ provider: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', streamUsage: true, env: {} }) as ChatOpenAI).streamUsage).toBe(true);
    expect((createChatModel({ provider: 'openai', env: { OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1', VQA_LLM_STREAM_USAGE: '1' } }) as ChatOpenAI).streamUsage).toBe(true);
    expect((createChatModel({ provider: 'openai', env: { OPENAI_API_KEY: 'sk', VQA_LLM_STREAM_USAGE: '0' } }) as ChatOpenAI).streamUsage).toBe(false);
  });

  it('should default to gpt-4o-mini', () => {
    expect((createChatModel({ provider: 'openai', env: { OPENAI_API_KEY: 'sk' } }) as ChatOpenAI).model).toBe('gpt-4o-mini');
  });

  it('should need a key for api.openai.com but not for a custom server', () => {
    expect(() => createChatModel({ provider: 'openai', env: {} })).toThrow(/OPENAI_API_KEY/);
    expect(createChatModel({ provider: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', env: {} })).toBeInstanceOf(ChatOpenAI);
  });

  it.each([
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ maxRetries: -1 }, 'maxRetries'],
    [{ baseUrl: 'not a url' }, 'baseUrl'],
    [{ provider: 'anthropic' }, 'provider'],
  ])('should name the bad option %j', (override, name) => {
    const make = () => createChatModel({ provider: 'openai', apiKey: 'k', env: {}, ...(override as object) });
    expect(make).toThrow(InvalidOptionError);
    expect(make).toThrow(name);
  });
});
