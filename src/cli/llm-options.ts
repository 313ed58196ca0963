// The LLM flags of `ask`, `chat`, `eval` and `worker`, in a module that loads no LLM: registering a command (and
// `--help`) must not cost the import of @langchain/openai, the local model's runtime or the chain.
import { Option, type Command } from 'commander';
import { VQA_CHAIN_DEFAULTS } from '../../chains/defaults.js';
import { CHAT_MODEL_DEFAULTS, type LlmProvider } from '../llm/llm-provider.js';
import { parseNonNegativeInteger, parsePositiveInteger, type ModelCommandOptions } from './shared.js';

/**
 * `LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs` (src/llm/local/chat-local-llama.ts), quoted in the help. Written out
 * because that module loads @langchain/core's chat model classes; test/cli/cold-start-imports.test.ts checks that the
 * two agree. The value used at run time is always the library's.
 */
export const LOCAL_LLM_STEP_TIMEOUT_HELP_MS = 120_000;

/** Options of the commands that answer questions (`ask`, `chat`). */
export interface LlmCommandOptions extends ModelCommandOptions {
  llm: LlmProvider;
  llmModel?: string;
  topK: number;
  /** Unset: 30000 ms, or LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs for the local model. */
  llmTimeout?: number;
  llmRetries: number;
  fewShot?: boolean;
}

/** Adds `--llm`, `--llm-model`, `--top-k`, `--llm-timeout`, `--llm-retries`, `--few-shot`. */
export function addLlmOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--llm <provider>',
        'openai: an OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY); local: the embedded GGUF model, in this process; none: the top VQA candidate; auto: openai when either variable is set, else local when its model file is there, else none',
      )
        .choices(['openai', 'local', 'none', 'auto'])
        .default('auto'),
    )
    .addOption(new Option('--llm-model <name>', `openai: model name sent to the endpoint (default ${CHAT_MODEL_DEFAULTS.model}); local: a .gguf path or a file name in --models (default: the default local model)`).env('VQA_LLM_MODEL'))
    .option('--top-k <n>', 'VQA candidates shown to the LLM', parsePositiveInteger('--top-k'), VQA_CHAIN_DEFAULTS.topK)
    .option(
      '--llm-timeout <ms>',
      `deadline for the LLM step; past it the answer falls back to the top candidate (default ${VQA_CHAIN_DEFAULTS.llmTimeoutMs}, ${LOCAL_LLM_STEP_TIMEOUT_HELP_MS} for --llm local)`,
      parsePositiveInteger('--llm-timeout'),
    )
    .option('--llm-retries <n>', 'retries of transient LLM errors, with backoff', parseNonNegativeInteger('--llm-retries'), VQA_CHAIN_DEFAULTS.llmRetries)
    .option('--few-shot', 'put worked examples in the prompt (helps small local models keep the format)');
}
