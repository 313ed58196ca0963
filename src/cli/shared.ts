import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { VqaLlmError } from '../errors/vqa-llm-error.js';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL } from '../models/defaults.js';
import { resolveModel } from '../models/resolve-model.js';
import { createVisionModels } from '../runtime/vision-models.js';
import type { ProgressCallback, VisionModels } from '../types.js';

/** Options every command that loads models accepts. */
export interface ModelCommandOptions {
  models?: string;
  captionModel: string;
  vqaModel: string;
  threads?: number;
  workers?: number;
  int8?: boolean;
  json?: boolean;
}

/** Adds `--models`, `--caption-model`, `--vqa-model`, `--threads`, `--workers`, `--int8`. */
export function addModelOptions(command: Command): Command {
  return command
    .addOption(new Option('--models <dir>', 'folder holding model folders').env('VQA_LLM_MODELS'))
    .option('--caption-model <name>', 'caption model: folder name under --models, a path, or a hub id owner/name', DEFAULT_CAPTION_MODEL)
    .option('--vqa-model <name>', 'VQA model: folder name under --models, a path, or a hub id owner/name', DEFAULT_VQA_MODEL)
    .option('--threads <n>', 'onnxruntime threads per model (default: cores shared between the models)', parsePositiveInteger('--threads'))
    .option('--workers <n>', 'worker threads per model (0 = run in the main thread)', parseNonNegativeInteger('--workers'))
    .option('--int8', 'use the int8 graphs where the model folder has them');
}

export function parsePositiveInteger(name: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1) throw new InvalidOptionError('invalid_value', `${name} must be a positive integer, got "${value}".`);
    return number;
  };
}

export function parseNonNegativeInteger(name: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < 0) throw new InvalidOptionError('invalid_value', `${name} must be an integer >= 0, got "${value}".`);
    return number;
  };
}

export function parseNumber(name: string): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!Number.isFinite(number)) throw new InvalidOptionError('invalid_value', `${name} must be a number, got "${value}".`);
    return number;
  };
}

/** Loads both vision models as the options say, reporting progress on stderr. */
export async function openVisionModels(options: ModelCommandOptions, extra: { onProgress?: ProgressCallback } = {}): Promise<VisionModels> {
  return createVisionModels({
    modelsDir: options.models,
    captionModel: options.captionModel,
    vqaModel: options.vqaModel,
    threads: options.threads,
    workers: options.workers,
    quantized: options.int8,
    onProgress: extra.onProgress ?? createProgressReporter(),
  });
}

/** Resolves one model spec (folder name, path or hub id) with progress on stderr. */
export async function resolveModelFolder(spec: string, options: ModelCommandOptions): Promise<string> {
  return resolveModel(spec, { modelsDir: options.models, onProgress: createProgressReporter() });
}

/**
 * Progress on stderr: a bar per downloaded file on a terminal, plain lines otherwise (logs, CI), nothing for
 * events too small to matter.
 */
export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressCallback {
  let bar: cliProgress.SingleBar | undefined;
  return (event) => {
    if (event.status === 'start' && event.task === 'load-models') {
      stream.write('Loading models…\n');
    } else if (event.status === 'start' && event.file && event.total) {
      if (stream.isTTY) {
        bar = new cliProgress.SingleBar(
          { format: `${event.file} [{bar}] {percentage}% {value}/{total} bytes`, stream, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(event.total, 0);
      } else {
        stream.write(`Downloading ${event.file} (${event.total} bytes)\n`);
      }
    } else if (event.status === 'progress' && bar) {
      bar.update(event.loaded);
    } else if (event.status === 'done' && bar) {
      bar.stop();
      bar = undefined;
    }
  };
}

/** Prints an error the way every command does: the message (with its hint), never a stack for our own errors. */
export function printError(error: unknown, stream: NodeJS.WriteStream = process.stderr): void {
  if (VqaLlmError.isInstance(error)) {
    stream.write(`error: ${error.message}\n`);
  } else if (error instanceof Error && error.name === 'AbortError') {
    stream.write('error: aborted\n');
  } else {
    stream.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
}

/** Prints a value as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
