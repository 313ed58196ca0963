// Cold start as a user meets it: `vqa-llm ask` on the tiny models as a whole process, timed from outside, and the
// library's import alone. Node's own start (`node -e 0`) is timed too, the floor under both.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { median, round } from './stats.js';

export interface ColdStartResult {
  runs: number;
  command: string;
  /** Whole `ask` process, spawn to exit, ms: median and every run in order. */
  askMs: number;
  askRunsMs: number[];
  /** `await import()` of the package entry (dist/src/index.js) inside a fresh process, ms: median. */
  importMs: number;
  /** A process that only imports the library, spawn to exit, ms: median. */
  importProcessMs: number;
  /** `node -e 0`, spawn to exit, ms: median. */
  nodeStartMs: number;
}

const run = promisify(execFile);

async function timeProcess(args: string[], cwd: string): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const { stdout } = await run(process.execPath, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, VQA_LLM_OFFLINE: '1' } });
  return { ms: performance.now() - started, stdout };
}

/**
 * Spawns each process `runs` times, taking turns (node alone, the import, `ask`) so that a change in the machine's
 * load falls on all three. Needs the compiled package (dist/) and the tiny test models.
 *
 * @example
 * const { askMs, importMs } = await benchColdStart({ runs: 5 });
 */
export async function benchColdStart(options: { runs?: number; image?: string; question?: string } = {}): Promise<ColdStartResult> {
  const root = packageRoot();
  const runs = options.runs ?? 5;
  const image = options.image ?? join(root, 'test', 'fixtures', 'eval', 'dogs.jpg');
  const question = options.question ?? 'What is in the picture?';
  const ask = ['bin/vqa-llm.js', 'ask', image, question, '--models', 'test/fixtures/models', '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--llm', 'none', '--json'];
  const entry = join(root, 'dist', 'src', 'index.js');
  const importScript = `const s = performance.now(); await import(${JSON.stringify(pathToFileURL(entry).href)}); console.log('IMPORT_MS ' + (performance.now() - s));`;
  const askRuns: number[] = [];
  const imports: number[] = [];
  const importProcesses: number[] = [];
  const nodeStarts: number[] = [];
  for (let index = 0; index < runs; index += 1) {
    nodeStarts.push((await timeProcess(['-e', '0'], root)).ms);
    const imported = await timeProcess(['--input-type=module', '-e', importScript], root);
    importProcesses.push(imported.ms);
    const line = imported.stdout.split('\n').find((candidate) => candidate.startsWith('IMPORT_MS '));
    if (!line) throw new Error('the import process printed no IMPORT_MS line');
    imports.push(Number(line.slice('IMPORT_MS '.length)));
    const asked = await timeProcess(ask, root);
    // The answer must be real: a process that failed fast would make a fine-looking cold start.
    const answer = JSON.parse(asked.stdout) as { answer?: unknown; candidates?: unknown[] };
    if (typeof answer.answer !== 'string' || !Array.isArray(answer.candidates) || answer.candidates.length === 0) throw new Error(`vqa-llm ask returned no answer: ${asked.stdout.slice(0, 200)}`);
    askRuns.push(asked.ms);
  }
  return {
    runs,
    command: `node ${ask.map((arg) => (arg.includes(' ') ? JSON.stringify(arg) : arg)).join(' ')}`.replace(root + '/', ''),
    askMs: round(median(askRuns)),
    askRunsMs: askRuns.map((ms) => round(ms)),
    importMs: round(median(imports)),
    importProcessMs: round(median(importProcesses)),
    nodeStartMs: round(median(nodeStarts)),
  };
}
