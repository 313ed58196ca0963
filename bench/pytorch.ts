// PyTorch eager baseline of the full-size stand-ins: models/bench_pytorch.py, run with the project's Python
// environment (.venv, made by `npm run models:full-size`), times the same four stages as the ONNX bench at the same
// thread counts, on the exporter's own PyTorch modules with the stand-ins' weights (rebuilt from the generator's
// seed; `--check` there compares every stage with onnxruntime). Without .venv, torch or the stand-ins the baseline
// is skipped, so that the bench still runs on a machine without Python.
//
//   node dist/bench/pytorch.js [--threads 1,2] [--iterations 3] [--image test/fixtures/eval/dogs.jpg]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';

export type PytorchStage = 'captionVision' | 'decoderStep' | 'vqaVision' | 'fusion';

export interface PytorchBenchResult {
  /** torch.__version__ of the environment that ran it. */
  torch: string;
  /** Median milliseconds per stage, keyed by the thread count (torch.set_num_threads) as a string. */
  threads: Record<string, Record<'captionVision' | 'decoderStep' | 'vqaVision' | 'fusion', number>>;
}

const STAGES: readonly PytorchStage[] = ['captionVision', 'decoderStep', 'vqaVision', 'fusion'];
const CAPTION_MODEL = 'blip-base-standin';
const VQA_MODEL = 'vle-base-standin';
/** bench_pytorch.py's exit status when torch or numpy is not importable. */
const MISSING_DEPENDENCY = 3;

function venvPython(root: string): string {
  const posix = join(root, '.venv', 'bin', 'python');
  return process.platform === 'win32' && !existsSync(posix) ? join(root, '.venv', 'Scripts', 'python.exe') : posix;
}

function parseResult(stdout: string, threads: number[]): PytorchBenchResult {
  // The script prints one JSON line; anything a library prints on stdout before it is not ours.
  const line = stdout.trim().split('\n').reverse().find((candidate) => candidate.startsWith('{'));
  if (!line) throw new Error(`models/bench_pytorch.py printed no JSON result:\n${stdout.slice(-2000)}`);
  const raw = JSON.parse(line) as { torch?: unknown; threads?: Record<string, Record<string, unknown>> };
  if (typeof raw.torch !== 'string' || typeof raw.threads !== 'object' || raw.threads === null) {
    throw new Error(`models/bench_pytorch.py printed an unexpected result: ${line.slice(0, 500)}`);
  }
  const result: PytorchBenchResult = { torch: raw.torch, threads: {} };
  for (const count of threads) {
    const stages = raw.threads[String(count)];
    const entry = {} as Record<PytorchStage, number>;
    for (const stage of STAGES) {
      const ms = stages?.[stage];
      if (typeof ms !== 'number' || !Number.isFinite(ms)) {
        throw new Error(`models/bench_pytorch.py gave no ${stage} time for ${count} thread(s): ${line.slice(0, 500)}`);
      }
      entry[stage] = ms;
    }
    result.threads[String(count)] = entry;
  }
  return result;
}

/**
 * Times the PyTorch eager baseline of the full-size stand-ins (captionVision, decoderStep, vqaVision, fusion; median
 * ms per thread count) by running `.venv/bin/python models/bench_pytorch.py` in a child process. Its progress goes
 * to this process's stderr, prefixed `[pytorch]`.
 *
 * Resolves `{ skipped }` when the package has no .venv, when torch is not installed there, or when `modelsDir`
 * lacks either stand-in; rejects when the script fails otherwise (a crash, or a result without every stage).
 *
 * @example
 * const baseline = await benchPytorch({ modelsDir: 'models/full-size', image: 'test/fixtures/eval/dogs.jpg', threads: [1, 2], iterations: 3 });
 * if (!('skipped' in baseline)) console.log(baseline.threads['1']!.fusion);
 */
export async function benchPytorch(options: { modelsDir: string; image: string; threads: number[]; iterations: number }): Promise<PytorchBenchResult | { skipped: string }> {
  const { modelsDir, image, threads, iterations } = options;
  if (threads.length === 0 || threads.some((count) => !Number.isInteger(count) || count < 1)) {
    throw new RangeError(`options.threads must list positive integers, got ${JSON.stringify(threads)}`);
  }
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`options.iterations must be a positive integer, got ${iterations}`);
  const root = packageRoot();
  const python = venvPython(root);
  if (!existsSync(python)) return { skipped: `no Python environment at ${python} (npm run models:full-size makes it)` };
  for (const model of [CAPTION_MODEL, VQA_MODEL]) {
    if (!existsSync(join(modelsDir, model, 'vqa-llm.json'))) return { skipped: `no ${model} in ${modelsDir} (npm run models:full-size makes it)` };
  }
  const args = [
    join(root, 'models', 'bench_pytorch.py'),
    '--models', modelsDir,
    '--caption-model', CAPTION_MODEL,
    '--vqa-model', VQA_MODEL,
    '--threads', threads.join(','),
    '--iterations', String(iterations),
    '--image', image,
  ];
  const { code, stdout, stderrTail } = await runPython(python, args, root);
  if (code === MISSING_DEPENDENCY) return { skipped: `${python} cannot import torch or numpy (${stderrTail.trim().split('\n').pop() ?? ''})` };
  if (code !== 0) throw new Error(`models/bench_pytorch.py exited with status ${code}:\n${stderrTail}`);
  return parseResult(stdout, threads);
}

function runPython(python: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderrTail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      // Minutes of work: pass the script's progress lines through as they come, and keep the end for errors.
      stderrTail = (stderrTail + chunk).slice(-4000);
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) process.stderr.write(`[pytorch] ${line}\n`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (pending) process.stderr.write(`[pytorch] ${pending}\n`);
      resolve({ code, stdout, stderrTail });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = packageRoot();
  const { values } = parseArgs({
    options: {
      'models-dir': { type: 'string', default: join(root, 'models', 'full-size') },
      image: { type: 'string', default: join(root, 'test', 'fixtures', 'eval', 'dogs.jpg') },
      threads: { type: 'string', default: '1,2' },
      iterations: { type: 'string', default: '3' },
    },
  });
  const result = await benchPytorch({
    modelsDir: values['models-dir']!,
    image: values.image!,
    threads: values.threads!.split(',').map(Number),
    iterations: Number(values.iterations),
  });
  console.log(JSON.stringify(result));
}
