// The LLM and the chain as the CLI options say, for `ask`, `chat`, `eval` and `worker`. Everything heavy loads here
// on demand: the chat model factories (@langchain/openai, and the local model's module, which create-chat-model
// imports) once an LLM is configured, the local model's runtime (node-llama-cpp) only when a local model loads, and
// the chain (@langchain/core's runnables) once a command is about to answer; `--llm none` loads none of the first.
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { VQA_CHAIN_DEFAULTS } from '../../chains/defaults.js';
import type { VqaResult } from '../../chains/types.js';
import type { VqaChain } from '../../chains/vqa-chain.js';
import { LocalLlmError } from '../errors/local-llm-error.js';
import { resolveLlmProvider } from '../llm/llm-provider.js';
import { locateLocalModel } from '../llm/local/local-model-path.js';
import type { VisionModels } from '../types.js';
import type { LlmCommandOptions } from './llm-options.js';
import { createProgressReporter } from './shared.js';

type ChainModule = typeof import('../../chains/vqa-chain.js');
type LocalModelModule = typeof import('../llm/local/chat-local-llama.js');

let chainModule: ChainModule | undefined;
// Set once `--llm local` loaded the local model's module: an LLM can only be a ChatLocalLlama after that.
let localModelModule: LocalModelModule | undefined;

async function loadChainModule(): Promise<ChainModule> {
  chainModule ??= await import('../../chains/vqa-chain.js');
  return chainModule;
}

async function loadLocalModelModule(): Promise<LocalModelModule> {
  localModelModule ??= await import('../llm/local/chat-local-llama.js');
  return localModelModule;
}

function isLocalModel(llm: BaseChatModel | 'none'): boolean {
  return localModelModule !== undefined && llm instanceof localModelModule.ChatLocalLlama;
}

/**
 * The chat model the CLI options say, loaded; call it before loading the vision models, so that a bad setup fails
 * fast. `--llm local` with a bad model file fails with its reason; `auto` falls back to the VQA model with a note
 * on stderr that says why and how to get the local model, as it does when nothing is configured.
 *
 * It also loads the chain's module, which {@link createChainForCli} needs: every command calls this first.
 */
export async function createLlmForCli(options: LlmCommandOptions, stderr: NodeJS.WritableStream = process.stderr): Promise<BaseChatModel | 'none'> {
  const llm = await createLlm(options, stderr);
  // After the LLM's own imports, not beside them: see ./program.ts on concurrent imports.
  try {
    await loadChainModule();
  } catch (error) {
    await disposeLlmForCli(llm);
    throw error;
  }
  return llm;
}

async function createLlm(options: LlmCommandOptions, stderr: NodeJS.WritableStream): Promise<BaseChatModel | 'none'> {
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
  // What createChatModel returns for `none`, without loading the chat model factories.
  if (provider === 'none') return 'none';
  // --llm local names a model to use: fetch it on first use, as the vision models are (auto uses one only once fetched).
  if (provider === 'local') {
    const location = locateLocalModel({ model: local.localModel, modelsDir: local.modelsDir });
    if (!location.exists && location.hub) {
      const { fetchLocalModel } = await import('../llm/local/fetch-local-model.js');
      local.localModel = await fetchLocalModel({ model: local.localModel, modelsDir: local.modelsDir, offline: options.offline || undefined, onProgress: createProgressReporter() });
    }
  }
  const { createChatModel } = await import('../llm/create-chat-model.js');
  // Only a local provider makes a ChatLocalLlama; for an endpoint, isLocalModel stays false without the module.
  const localModule = provider === 'local' ? await loadLocalModelModule() : undefined;
  // --threads is per model, the local LLM included.
  const timeoutMs = options.llmTimeout ?? (localModule ? localModule.LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs : VQA_CHAIN_DEFAULTS.llmTimeoutMs);
  const llm = createChatModel({ provider, model: options.llmModel, ...local, threads: options.threads, timeoutMs, maxRetries: options.llmRetries });
  if (!localModule || !(llm instanceof localModule.ChatLocalLlama)) return llm;
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
  if (isLocalModel(llm)) await (llm as InstanceType<LocalModelModule['ChatLocalLlama']>).dispose();
}

/** Builds the chain the way the CLI options say; after {@link createLlmForCli}, which loads the chain's module. */
export function createChainForCli(vision: VisionModels, llm: BaseChatModel | 'none', options: LlmCommandOptions): VqaChain {
  if (!chainModule) throw new Error('createChainForCli needs createLlmForCli to have been awaited first (it loads the chain).');
  // A model on this machine's CPU takes longer than an endpoint on a GPU: its own default deadline, unless given.
  const llmTimeoutMs = options.llmTimeout ?? (isLocalModel(llm) ? localModelModule!.LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs : VQA_CHAIN_DEFAULTS.llmTimeoutMs);
  return chainModule.createVqaChain({ vision, llm, topK: options.topK, llmTimeoutMs, llmRetries: options.llmRetries, fewShot: options.fewShot === true });
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
