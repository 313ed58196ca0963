import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { Option, type Command } from 'commander';
import { VQA_CHAIN_DEFAULTS } from '../../../chains/defaults.js';
import type { VqaResult } from '../../../chains/types.js';
import { createVqaChain, type VqaChain } from '../../../chains/vqa-chain.js';
import { CHAT_MODEL_DEFAULTS, ChatLocalLlama, createChatModel, fetchLocalModel, LOCAL_CHAT_MODEL_DEFAULTS, locateLocalModel, resolveLlmProvider, type LlmProvider } from '../../llm/index.js';
import { LocalLlmError } from '../../errors/index.js';
import type { VisionModels } from '../../types.js';
import { addModelOptions, createProgressReporter, openVisionModels, parseNonNegativeInteger, parsePositiveInteger, printJson, type ModelCommandOptions } from '../shared.js';

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
      `deadline for the LLM step; past it the answer falls back to the top candidate (default ${VQA_CHAIN_DEFAULTS.llmTimeoutMs}, ${LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs} for --llm local)`,
      parsePositiveInteger('--llm-timeout'),
    )
    .option('--llm-retries <n>', 'retries of transient LLM errors, with backoff', parseNonNegativeInteger('--llm-retries'), VQA_CHAIN_DEFAULTS.llmRetries)
    .option('--few-shot', 'put worked examples in the prompt (helps small local models keep the format)');
}

/**
 * The chat model the CLI options say, loaded; call it before loading the vision models, so that a bad setup fails
 * fast. `--llm local` with a bad model file fails with its reason; `auto` falls back to the VQA model with a note
 * on stderr that says why and how to get the local model, as it does when nothing is configured.
 */
export async function createLlmForCli(options: LlmCommandOptions, stderr: NodeJS.WritableStream = process.stderr): Promise<BaseChatModel | 'none'> {
  const local = { localModel: options.llmModel, modelsDir: options.models };
  let provider: ReturnType<typeof resolveLlmProvider>;
  try {
    provider = resolveLlmProvider(options.llm, process.env, local);
  } catch (error) {
    if (options.llm === 'local') throw error;
    provider = 'none';
  }
  if (provider === 'none' && options.llm === 'auto') {
    const where = (() => {
      try {
        return locateLocalModel({ model: local.localModel, modelsDir: local.modelsDir });
      } catch {
        return undefined;
      }
    })();
    stderr.write(`note: no LLM: neither OPENAI_BASE_URL nor OPENAI_API_KEY is set and there is no local model${where ? ` at ${where.path}` : ''}; answers are the VQA model's top candidate. ${where?.hint ?? ''}\n`);
  }
  // --llm local names a model to use: fetch it on first use, as the vision models are (auto uses one only once fetched).
  if (provider === 'local') {
    const location = locateLocalModel({ model: local.localModel, modelsDir: local.modelsDir });
    if (!location.exists && location.hub) {
      local.localModel = await fetchLocalModel({ model: local.localModel, modelsDir: local.modelsDir, offline: options.offline || undefined, onProgress: createProgressReporter() });
    }
  }
  // --threads is per model, the local LLM included.
  const timeoutMs = options.llmTimeout ?? (provider === 'local' ? LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs : VQA_CHAIN_DEFAULTS.llmTimeoutMs);
  const llm = createChatModel({ provider, model: options.llmModel, ...local, threads: options.threads, timeoutMs, maxRetries: options.llmRetries });
  if (!(llm instanceof ChatLocalLlama)) return llm;
  try {
    await llm.load();
    return llm;
  } catch (error) {
    if (options.llm === 'local' || !LocalLlmError.isInstance(error)) throw error;
    // auto found a file that will not load: answer without an LLM rather than not at all, and say why.
    stderr.write(`note: the local model could not be used (${error.reason}): ${error.message} Answers are the VQA model's top candidate.\n`);
    return 'none';
  }
}

/** Releases what {@link createLlmForCli} loaded (the local model's memory and threads). */
export async function disposeLlmForCli(llm: BaseChatModel | 'none'): Promise<void> {
  if (llm instanceof ChatLocalLlama) await llm.dispose();
}

/** Builds the chain the way the CLI options say. */
export function createChainForCli(vision: VisionModels, llm: BaseChatModel | 'none', options: LlmCommandOptions): VqaChain {
  // A model on this machine's CPU takes longer than an endpoint on a GPU: its own default deadline, unless given.
  const llmTimeoutMs = options.llmTimeout ?? (llm instanceof ChatLocalLlama ? LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs : VQA_CHAIN_DEFAULTS.llmTimeoutMs);
  return createVqaChain({ vision, llm, topK: options.topK, llmTimeoutMs, llmRetries: options.llmRetries, fewShot: options.fewShot === true });
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
      const llm = await createLlmForCli(options);
      const vision = await openVisionModels(options).catch(async (error: unknown) => {
        await disposeLlmForCli(llm);
        throw error;
      });
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
        await disposeLlmForCli(llm);
      }
    });
}
