import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { Option, type Command } from 'commander';
import { VQA_CHAIN_DEFAULTS } from '../../../chains/defaults.js';
import type { VqaResult } from '../../../chains/types.js';
import { createVqaChain, type VqaChain } from '../../../chains/vqa-chain.js';
import { CHAT_MODEL_DEFAULTS, createChatModel, type LlmProvider } from '../../llm/index.js';
import type { VisionModels } from '../../types.js';
import { addModelOptions, openVisionModels, parseNonNegativeInteger, parsePositiveInteger, printJson, type ModelCommandOptions } from '../shared.js';

/** Options of the commands that answer questions (`ask`, `chat`). */
export interface LlmCommandOptions extends ModelCommandOptions {
  llm: LlmProvider;
  llmModel?: string;
  topK: number;
  llmTimeout: number;
  llmRetries: number;
  fewShot?: boolean;
}

/** Adds `--llm`, `--llm-model`, `--top-k`, `--llm-timeout`, `--llm-retries`, `--few-shot`. */
export function addLlmOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--llm <provider>', 'openai: an OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY); none: the top VQA candidate; auto: openai when either variable is set')
        .choices(['openai', 'none', 'auto'])
        .default('auto'),
    )
    .addOption(new Option('--llm-model <name>', `model name sent to the endpoint (default ${CHAT_MODEL_DEFAULTS.model})`).env('VQA_LLM_MODEL'))
    .option('--top-k <n>', 'VQA candidates shown to the LLM', parsePositiveInteger('--top-k'), VQA_CHAIN_DEFAULTS.topK)
    .option('--llm-timeout <ms>', 'deadline for the LLM step; past it the answer falls back to the top candidate', parsePositiveInteger('--llm-timeout'), VQA_CHAIN_DEFAULTS.llmTimeoutMs)
    .option('--llm-retries <n>', 'retries of transient LLM errors, with backoff', parseNonNegativeInteger('--llm-retries'), VQA_CHAIN_DEFAULTS.llmRetries)
    .option('--few-shot', 'put worked examples in the prompt (helps small local models keep the format)');
}

/** The chat model the CLI options say; call it before loading models, so that a bad setup fails fast. */
export function createLlmForCli(options: LlmCommandOptions): BaseChatModel | 'none' {
  return createChatModel({ provider: options.llm, model: options.llmModel, timeoutMs: options.llmTimeout, maxRetries: options.llmRetries });
}

/** Builds the chain the way the CLI options say. */
export function createChainForCli(vision: VisionModels, llm: BaseChatModel | 'none', options: LlmCommandOptions): VqaChain {
  return createVqaChain({ vision, llm, topK: options.topK, llmTimeoutMs: options.llmTimeout, llmRetries: options.llmRetries, fewShot: options.fewShot === true });
}

/** One line on stderr when the LLM was configured but not used, so a fallback never passes silently. */
export function describeFallback(result: VqaResult): string | undefined {
  if (result.source === 'llm' || result.fallbackReason?.code === 'llm_disabled') return undefined;
  return `note: answered by the VQA model (${result.fallbackReason?.code}): ${result.fallbackReason?.message}`;
}

/** Aborts on Ctrl-C, so that model work and the LLM call stop instead of running on. */
export function abortOnInterrupt(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  process.once('SIGINT', onInterrupt);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onInterrupt) };
}

/** Registers `vqa-llm ask IMAGE QUESTION`. */
export function register(program: Command): void {
  addLlmOptions(
    addModelOptions(
      program
        .command('ask')
        .description('answer a question about an image: VQA candidates and a caption, picked and phrased by an LLM')
        .argument('<image>', 'image file, http(s) URL or data URL')
        .argument('<question>', 'the question, in quotes'),
    ),
  )
    .option('--json', 'print the whole result (answer, candidates, caption, source, timings, models)')
    .action(async (image: string, question: string, options: LlmCommandOptions) => {
      // A bad --llm setup (no key for api.openai.com) should fail before the models spend seconds loading.
      const llm = createLlmForCli(options);
      const vision = await openVisionModels(options);
      const interrupt = abortOnInterrupt();
      try {
        const chain = createChainForCli(vision, llm, options);
        const result = await chain.invoke({ image, question }, { signal: interrupt.signal });
        if (options.json) {
          printJson(result);
        } else {
          process.stdout.write(`${result.answer}\n`);
          const note = describeFallback(result);
          if (note) process.stderr.write(`${note}\n`);
        }
      } finally {
        interrupt.dispose();
        await vision.dispose();
      }
    });
}
