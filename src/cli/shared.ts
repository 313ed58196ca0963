// What every command shares: model flags, progress on stderr, errors and JSON output. Every command's module imports
// this one when the CLI starts, so it imports nothing heavy: model resolution, the vision runtime and the progress
// bars load when a command uses them (see test/cli/cold-start-imports.test.ts).
import { createRequire } from 'node:module';
import type { MultiBar, SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import { VqaLlmError } from '../errors/vqa-llm-error.js';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL } from '../models/defaults.js';
import type { ProgressCallback, VisionModels } from '../types.js';

// cli-progress is CommonJS: required on the first bar, so that runs without a terminal (logs, pipes, tests) never load it.
const require = createRequire(import.meta.url);
/** cli-progress, loaded on first use. */
export function progressBars(): typeof import('cli-progress') {
  return require('cli-progress') as typeof import('cli-progress');
}

/** Options every command that loads models accepts. */
export interface ModelCommandOptions {
  models?: string;
  captionModel: string;
  vqaModel: string;
  threads?: number;
  workers?: number;
  int8?: boolean;
  offline?: boolean;
  json?: boolean;
  /** Shared image-work cache URL (`--cache` / `VQA_LLM_REDIS_URL`), for commands that offer it. */
  cache?: string;
}

/** Adds `--models`, `--caption-model`, `--vqa-model`, `--threads`, `--workers`, `--int8`, `--offline`. */
export function addModelOptions(command: Command): Command {
  return command
    .addOption(new Option('--models <dir>', 'folder holding model folders').env('VQA_LLM_MODELS'))
    .option('--caption-model <name>', 'caption model: folder name under --models, a path, or a hub id owner/name', DEFAULT_CAPTION_MODEL)
    .option('--vqa-model <name>', 'VQA model: folder name under --models, a path, or a hub id owner/name', DEFAULT_VQA_MODEL)
    .option('--threads <n>', 'onnxruntime threads per graph (default: the cores the process may use, shared by the two models through one core budget: see docs/performance.md)', parsePositiveInteger('--threads'))
    .option('--workers <n>', 'worker threads per model (0 = run in the main thread)', parseNonNegativeInteger('--workers'))
    .option('--int8', 'use the int8 graphs where the model folder has them')
    .option('--offline', 'never download: use local folders and the cache only (also VQA_LLM_OFFLINE=1)');
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
export async function openVisionModels(options: ModelCommandOptions, extra: { onProgress?: ProgressCallback; fusionCacheBytes?: number } = {}): Promise<VisionModels> {
  const { createVisionModels } = await import('../runtime/vision-models.js');
  return createVisionModels({
    modelsDir: options.models,
    captionModel: options.captionModel,
    vqaModel: options.vqaModel,
    threads: options.threads,
    workers: options.workers,
    quantized: options.int8,
    offline: options.offline || undefined,
    cache: options.cache,
    fusionCacheBytes: extra.fusionCacheBytes,
    onProgress: extra.onProgress ?? createProgressReporter(),
  });
}

/** Resolves one model spec (folder name, path or hub id) with progress on stderr. */
export async function resolveModelFolder(spec: string, options: ModelCommandOptions): Promise<string> {
  const { resolveModel } = await import('../models/resolve-model.js');
  return resolveModel(spec, { modelsDir: options.models, offline: options.offline || undefined, onProgress: createProgressReporter() });
}

// What happens to a task's bytes: verifying a local folder is not downloading it.
function progressVerb(task: string): string {
  if (task.startsWith('verify:')) return 'Checking';
  if (task.startsWith('download:')) return 'Downloading';
  if (task.startsWith('convert:')) return 'Converting';
  return 'Reading';
}

function taskSubject(task: string): string {
  return task.includes(':') ? task.slice(task.indexOf(':') + 1) : task;
}

/** Bytes said the way people read them: 990.2 MB, 12.0 kB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Progress on stderr: one bar per task on a terminal (a download and a conversion, or two models fetched side by
 * side, each keep their own line), plain lines otherwise (logs, CI), nothing for events too small to matter. A task
 * that announces its size before it starts (a hub download) gets a line saying how much is coming.
 */
// Bar groups still drawing: an error stops them (their redraw timer would keep the process alive, and the terminal
// would keep its cursor hidden).
const openBarGroups = new Set<MultiBar>();

/** Stops every progress bar still drawing; printError calls it before the message. */
export function stopProgressOutput(): void {
  for (const bars of openBarGroups) bars.stop();
  openBarGroups.clear();
}

export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressCallback {
  let bars: MultiBar | undefined;
  const taskBars = new Map<string, SingleBar>();
  const barFor = (task: string, file: string): SingleBar => {
    let bar = taskBars.get(task);
    if (!bar) {
      if (!bars) {
        const cliProgress = progressBars();
        bars = new cliProgress.MultiBar(
          { format: '{verb} {subject} [{bar}] {percentage}% {file}', stream, hideCursor: true, clearOnComplete: false, gracefulExit: true },
          cliProgress.Presets.shades_classic,
        );
        openBarGroups.add(bars);
      }
      bar = bars.create(100, 0, { verb: progressVerb(task), subject: taskSubject(task), file });
      taskBars.set(task, bar);
    }
    return bar;
  };
  return (event) => {
    if (event.status === 'start' && event.task === 'load-models') {
      stream.write('Loading models…\n');
    } else if (event.status === 'start' && !event.file && event.total !== undefined) {
      // Said before the first byte moves, so that a user on a slow or metered link can stop in time.
      const line = `${progressVerb(event.task)} ${taskSubject(event.task)}: ${formatBytes(event.total)}\n`;
      // Through the bar group while one draws, so that the line does not land inside another task's bar.
      if (bars) bars.log(line);
      else stream.write(line);
    } else if (event.status === 'start' && event.task.startsWith('wait:')) {
      stream.write(`Waiting for another process that is fetching ${taskSubject(event.task)}…\n`);
    } else if (event.status === 'start' && event.file && event.total) {
      if (stream.isTTY) barFor(event.task, event.file).update({ file: event.file });
      else stream.write(`${progressVerb(event.task)} ${event.file} (${formatBytes(event.total)})\n`);
    } else if (event.status === 'progress' && stream.isTTY && taskBars.has(event.task)) {
      taskBars.get(event.task)!.update(Math.floor(event.progress ?? 0), { file: event.file ?? '' });
    } else if (event.status === 'ready' && taskBars.has(event.task)) {
      taskBars.get(event.task)!.update(100, { file: '' });
      taskBars.delete(event.task);
      if (taskBars.size === 0 && bars) {
        bars.stop();
        openBarGroups.delete(bars);
        bars = undefined;
      }
    }
  };
}

// Node's system errors, said plainly; the path or address follows.
const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'a folder where a file is needed',
  ENOTDIR: 'not a folder',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EMFILE: 'too many open files',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
};

// Library option names as the flags that set them, so that an error about topK names --top-k.
const FLAG_NAMES: [RegExp, string][] = [[/^topK\b/, '--top-k']];

/** The one line the CLI prints for an error: what is wrong and, for our own errors, what to do. */
export function describeError(error: unknown): string {
  if (InvalidOptionError.isInstance(error)) return FLAG_NAMES.reduce((message, [name, flag]) => message.replace(name, flag), error.message);
  if (VqaLlmError.isInstance(error)) return error.message;
  if (error instanceof Error && error.name === 'AbortError') return 'aborted';
  const fields = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; path?: unknown; address?: unknown; port?: unknown; message?: unknown };
  const known = typeof fields.code === 'string' ? SYSTEM_ERRORS[fields.code] : undefined;
  if (known && typeof fields.path === 'string') return `${known}: ${fields.path}`;
  if (known && typeof fields.address === 'string') return `${known}: ${fields.address}${typeof fields.port === 'number' ? `:${fields.port}` : ''}`;
  return typeof fields.message === 'string' && fields.message !== '' ? fields.message : String(error);
}

/**
 * Prints an error the way every command does: one line, `error: ` and {@link describeError}; never a stack trace,
 * unless VQA_LLM_DEBUG=1 asks for one (on the lines after).
 */
export function printError(error: unknown, stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): void {
  stopProgressOutput();
  stream.write(`error: ${describeError(error).replace(/\s*\n\s*/gu, ' ').trim()}\n`);
  if (/^(1|true|yes)$/i.test(env.VQA_LLM_DEBUG ?? '') && error instanceof Error && error.stack) stream.write(`${error.stack}\n`);
}

/** Prints a value as JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
