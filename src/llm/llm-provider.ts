// The provider choice and the endpoint defaults, apart from the chat model factory: the CLI registers its options and
// resolves `auto` with these alone, so that `--llm none` and `--help` never load @langchain/openai or the local model.
import { InvalidOptionError } from '../errors/index.js';
import { locateLocalModel } from './local/local-model-path.js';

/**
 * Where the LLM comes from: an OpenAI-compatible endpoint, the embedded model (`local`, a GGUF run in-process),
 * none (answer with the top VQA candidate), or auto.
 */
export type LlmProvider = 'openai' | 'local' | 'none' | 'auto';

/** Defaults of `createChatModel` (./create-chat-model.ts), in one place so the CLI help and the README can quote them. */
export const CHAT_MODEL_DEFAULTS = {
  model: 'gpt-4o-mini',
  baseUrl: 'https://api.openai.com/v1',
  timeoutMs: 30_000,
  maxRetries: 2,
  temperature: 0,
  maxTokens: 256,
} as const;

/** A setting with its surrounding blanks removed; blank counts as unset. */
export function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/**
 * Resolves `auto` from the environment: `openai` when an OpenAI-compatible endpoint is configured, else `local` when
 * the local model's file is there (`local` says where to look), else `none`.
 *
 * @example
 * ```ts
 * resolveLlmProvider('auto', { OPENAI_BASE_URL: 'http://127.0.0.1:8080/v1' }); // 'openai'
 * resolveLlmProvider('auto', {}, { localModel: './model.gguf' }); // 'local' when ./model.gguf exists, else 'none'
 * ```
 */
export function resolveLlmProvider(
  provider: LlmProvider = 'auto',
  env: Record<string, string | undefined> = process.env,
  local: { localModel?: string; modelsDir?: string } = {},
): 'openai' | 'local' | 'none' {
  if (provider === 'openai' || provider === 'local' || provider === 'none') return provider;
  if (provider !== 'auto') {
    throw new InvalidOptionError('invalid_value', `provider must be 'openai', 'local', 'none' or 'auto', got ${JSON.stringify(provider)}.`);
  }
  if (nonEmpty(env.OPENAI_API_KEY) || nonEmpty(env.OPENAI_BASE_URL)) return 'openai';
  try {
    return locateLocalModel({ model: local.localModel, modelsDir: local.modelsDir, env }).exists ? 'local' : 'none';
  } catch {
    // A hub id that is not downloaded yet is no local model to use.
    return 'none';
  }
}
