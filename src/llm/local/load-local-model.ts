import { stat } from 'node:fs/promises';
import type { LlamaModel } from 'node-llama-cpp';
import { LocalLlmError } from '../../errors/index.js';
import type { LlamaRuntime } from './llama-runtime.js';

/** A GGUF model loaded and checked: it has a chat template and an architecture llama.cpp knows. */
export interface LoadedLocalModel {
  model: LlamaModel;
  /** `general.architecture`, e.g. `qwen2`, `llama`. */
  architecture: string;
  /** `general.name` when the file has one, else the file name. */
  name: string;
}

export interface LoadLocalModelOptions {
  runtime: LlamaRuntime;
  path: string;
  /** What to tell the user when the file is missing (how to get it). */
  missingHint?: string;
}


/**
 * Checks and loads one GGUF file, saying precisely what is wrong with a bad one: missing, not GGUF, no chat
 * template (a base model), an architecture llama.cpp does not know, or weights that do not load (truncated).
 * The header is read first (node-llama-cpp's reader, no weights): a bad file costs no model load.
 *
 * @throws {LocalLlmError} with reason `model_not_found`, `invalid_gguf`, `no_chat_template`,
 * `unsupported_architecture` or `model_corrupt`.
 *
 * @example
 * ```ts
 * const { model, architecture } = await loadLocalModel({ runtime: await getLlamaRuntime(), path: 'qwen.gguf' });
 * ```
 */
export async function loadLocalModel(options: LoadLocalModelOptions): Promise<LoadedLocalModel> {
  const { runtime, path } = options;
  const stats = await stat(path).catch(() => undefined);
  if (!stats?.isFile()) {
    throw new LocalLlmError('model_not_found', `No GGUF model file at ${path}.`, { hint: options.missingHint ?? 'Pass the path of a .gguf file with --llm-model.' });
  }
  let metadata: Record<string, unknown> & { general?: { architecture?: unknown; name?: unknown }; tokenizer?: { chat_template?: unknown } };
  try {
    const info = await runtime.module.readGgufFileInfo(path, { readTensorInfo: false, ignoreKeys: ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges'] });
    metadata = info.metadata as typeof metadata;
  } catch (error) {
    throw new LocalLlmError('invalid_gguf', `${path} is not a readable GGUF file: ${(error as Error).message}`, {
      hint: 'Download the .gguf file again; a model for the embedded LLM must be in GGUF format (llama.cpp).',
      cause: error,
    });
  }
  const architecture = typeof metadata.general?.architecture === 'string' ? metadata.general.architecture : 'unknown';
  const name = typeof metadata.general?.name === 'string' && metadata.general.name !== '' ? metadata.general.name : path.split(/[\\/]/).at(-1)!;
  const template = metadata.tokenizer?.chat_template;
  if (typeof template !== 'string' || template.trim() === '') {
    throw new LocalLlmError('no_chat_template', `${path} (${name}) has no chat template, so it cannot hold a conversation: it is probably a base model.`, {
      hint: 'Use the instruct (chat) version of the model, e.g. a file named *-instruct-*.gguf.',
    });
  }
  const before = runtime.logCount();
  try {
    const model = await runtime.llama.loadModel({ modelPath: path, gpuLayers: 0 });
    return { model, architecture, name };
  } catch (error) {
    // llama.cpp's log lines reach JavaScript through the event loop: let those of this load arrive.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const logs = runtime.logsSince(before);
    const unknownArchitecture = logs.find((line) => /unknown model architecture/i.test(line));
    if (unknownArchitecture) {
      throw new LocalLlmError('unsupported_architecture', `${path} is a GGUF of architecture '${architecture}', which this llama.cpp build (node-llama-cpp ${runtime.llama.buildType}) does not support.`, {
        hint: 'Choose a model of a supported architecture (llama, qwen2, qwen3, gemma, phi3, ...), or a newer node-llama-cpp.',
        cause: error,
      });
    }
    const detail = logs.find((line) => /error loading model/i.test(line))?.replace(/^error:\s*/, '') ?? (error as Error).message;
    throw new LocalLlmError('model_corrupt', `${path} could not be loaded: ${detail}`, {
      hint: 'The file is probably truncated or damaged: download it again and compare its sha256 with the hub\'s.',
      cause: error,
    });
  }
}
