import type { Llama } from 'node-llama-cpp';
import { LocalLlmError } from '../../errors/index.js';

/** node-llama-cpp's module, loaded on first use only: it is an optional dependency with a native binary. */
export type NodeLlamaCpp = typeof import('node-llama-cpp');

/** The loaded module, one llama.cpp instance for the process, and what llama.cpp logged lately. */
export interface LlamaRuntime {
  module: NodeLlamaCpp;
  llama: Llama;
  /** How many lines llama.cpp has logged so far (a position for {@link LlamaRuntime.logsSince}). */
  logCount(): number;
  /** llama.cpp's warning and error lines since position `count` (the last 64 at most): load failures are explained only there. */
  logsSince(count: number): readonly string[];
}

const INSTALL_HINT = 'Install the optional dependency: npm install node-llama-cpp@3.21.1 (it brings prebuilt llama.cpp binaries for Linux, macOS and Windows).';
const LOG_LINES_KEPT = 64;

let runtime: Promise<LlamaRuntime> | undefined;

function isModuleMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

async function load(importModule: () => Promise<NodeLlamaCpp>): Promise<LlamaRuntime> {
  let module: NodeLlamaCpp;
  try {
    module = await importModule();
  } catch (error) {
    throw new LocalLlmError('runtime_missing', isModuleMissing(error) ? 'The embedded LLM needs node-llama-cpp, which is not installed.' : `node-llama-cpp could not be loaded: ${(error as Error).message}`, {
      hint: INSTALL_HINT,
      cause: error,
    });
  }
  const logs: string[] = [];
  let total = 0;
  const debug = /^(1|true|yes)$/i.test(process.env.VQA_LLM_DEBUG ?? '');
  try {
    const llama = await module.getLlama({
      // CPU, as the vision models run: a GPU build is a user's explicit choice (gpu option), never probed for.
      gpu: false,
      // Only the prebuilt binaries: a run never compiles llama.cpp or downloads its sources.
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      // Each context sets its own thread count; no process-wide cap that would override it.
      maxThreads: 0,
      logLevel: module.LlamaLogLevel.warn,
      logger: (level, message) => {
        const line = `${level}: ${message.trim()}`;
        logs.push(line);
        total += 1;
        if (logs.length > LOG_LINES_KEPT) logs.shift();
        if (debug) process.stderr.write(`llama.cpp ${line}\n`);
      },
    });
    return { module, llama, logCount: () => total, logsSince: (count) => logs.slice(Math.max(0, logs.length - (total - count))) };
  } catch (error) {
    throw new LocalLlmError('runtime_missing', `node-llama-cpp has no working llama.cpp binary for ${process.platform}-${process.arch}: ${(error as Error).message}`, {
      hint: `${INSTALL_HINT} Its platform package (@node-llama-cpp/${process.platform}-${process.arch}) must be installed too.`,
      cause: error,
    });
  }
}

/**
 * The process's one llama.cpp instance, made on first call. Several models share it, as they share the CPU.
 *
 * @throws {LocalLlmError} `runtime_missing` when node-llama-cpp or its binary is absent (and again on each call:
 * a failed load is not cached, so installing the package fixes a long-running server without a restart).
 *
 * @example
 * ```ts
 * const { llama } = await getLlamaRuntime();
 * const model = await llama.loadModel({ modelPath: 'model.gguf' });
 * ```
 */
export function getLlamaRuntime(options: { importModule?: () => Promise<NodeLlamaCpp> } = {}): Promise<LlamaRuntime> {
  if (options.importModule) return load(options.importModule);
  runtime ??= load(() => import('node-llama-cpp')).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}
