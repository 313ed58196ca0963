import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_LLM_STEP_TIMEOUT_HELP_MS } from '../../dist/src/cli/llm-options.js';
import { createProgram } from '../../dist/src/cli/main.js';
import { WORKER_COMMAND_DEFAULTS } from '../../dist/src/cli/commands/worker.js';
import { COMMANDS } from '../../dist/src/cli/program.js';
import { EVAL_WORKER_DEFAULTS } from '../../dist/src/distributed/eval-worker.js';
import { WORKER_HEALTH_DEFAULTS } from '../../dist/src/distributed/worker-health.js';
import { LOCAL_CHAT_MODEL_DEFAULTS } from '../../dist/src/llm/local/chat-local-llama.js';
import { fixtureImage, modelsDir, root } from '../helpers/fixtures.js';

const run = promisify(execFile);
const cli = join(root, 'bin', 'vqa-llm.js');
const recorder = join(root, 'test', 'cli', 'import-recorder.mjs');
const tiny = ['--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle'];

// What a question without an LLM has no use for: the server stack, the queue, the LLM clients, the converter.
// prom-client too: the vision models count their runs in plain numbers, and only a /metrics registry loads it.
const SERVER_AND_LLM_PACKAGES = ['fastify', '@fastify/multipart', '@fastify/static', 'bullmq', 'ioredis', '@langchain/openai', 'openai', 'node-llama-cpp', 'onnx-proto', 'prom-client'];

/** A package's name from a module URL under node_modules, or undefined for the project's own files and node: builtins. */
function packageOf(url: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return match?.[1];
}

interface Recorded {
  stdout: string;
  stderr: string;
  /** Module URLs loaded on the main thread. */
  modules: string[];
  packages: Set<string>;
}

describe('the CLI at start-up', () => {
  let scratch: string;
  let runs = 0;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-cold-start-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** Runs node with the import recorder (./import-recorder.mjs) and returns what the main thread loaded. */
  async function recordImports(args: string[]): Promise<Recorded> {
    runs += 1;
    const log = join(scratch, `imports-${runs}.log`);
    const { stdout, stderr } = await run(process.execPath, ['--import', recorder, ...args], { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1', VQA_LLM_IMPORT_LOG: log } });
    const modules = (await readFile(log, 'utf8'))
      .split('\n')
      .filter((line) => line.startsWith('main\t'))
      .map((line) => line.slice('main\t'.length));
    return { stdout, stderr, modules, packages: new Set(modules.flatMap((url) => packageOf(url) ?? [])) };
  }

  it('should answer `ask --llm none` without loading the server stack, the queue or an LLM client', async () => {
    const recorded = await recordImports([cli, 'ask', fixtureImage('fishing.jpg'), "What is in the man's hand?", ...tiny, '--llm', 'none', '--json']);
    // The recorder saw a real answer being made: the chain, sharp and the workers' pool were loaded.
    const result = JSON.parse(recorded.stdout) as { source: string; candidates: unknown[] };
    expect(result.source).toBe('vqa');
    expect(result.candidates.length).toBeGreaterThan(0);
    expect(recorded.packages).toContain('@langchain/core');
    expect(recorded.packages).toContain('sharp');
    expect(recorded.packages).toContain('piscina');
    expect(SERVER_AND_LLM_PACKAGES.filter((name) => recorded.packages.has(name))).toEqual([]);
    // No other command's module, and no server module, on the way.
    const own = recorded.modules.filter((url) => url.includes('/dist/src/')).map((url) => url.slice(url.indexOf('/dist/src/') + '/dist/src/'.length));
    expect(own.filter((path) => path.startsWith('cli/commands/'))).toEqual(['cli/commands/ask.js', 'cli/commands/ask-action.js']);
    expect(own.filter((path) => path.startsWith('server/vqa-server') || path.startsWith('server/routes/') || path.startsWith('convert/convert-checkpoint'))).toEqual([]);
  });

  it('should print the version without loading any command', async () => {
    const recorded = await recordImports([cli, '--version']);
    expect(recorded.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(recorded.modules.filter((url) => url.includes('/cli/commands/'))).toEqual([]);
    expect([...recorded.packages]).toEqual(['commander']);
  });

  it('should list every command with --help, and show a command\'s options, without loading the chain or the server', async () => {
    for (const args of [['--help'], ['ask', '--help'], ['worker', '--help']]) {
      const recorded = await recordImports([cli, ...args]);
      expect(recorded.stdout).toContain('Usage: vqa-llm');
      // sharp: the worker's queue (its image store) and readiness probe load it when the worker runs, not before.
      for (const name of ['@langchain/core', '@huggingface/transformers', 'onnxruntime-node', 'sharp', ...SERVER_AND_LLM_PACKAGES]) expect(recorded.packages, `${args.join(' ')}: ${name}`).not.toContain(name);
    }
  });

  it('should load nothing but onnxruntime in an inference worker', async () => {
    // The worker's entry module, loaded on a main thread, where the recorder sees every import (module hooks see what
    // is imported, not what CommonJS packages require: onnxruntime-node's own onnxruntime-common is not listed).
    const entry = new URL('../../dist/src/runtime/inference-worker.js', import.meta.url).href;
    const recorded = await recordImports(['--input-type=module', '-e', `await import(${JSON.stringify(entry)});`]);
    expect([...recorded.packages]).toEqual(['onnxruntime-node']);
  });

  it('should show the same help, command by command, as the program with every command registered', async () => {
    const program = createProgram();
    expect(program.commands.map((command) => command.name())).toEqual(COMMANDS.map((command) => command.name));
    // Help is wrapped to the terminal's width: both sides are printed by a child process without a terminal.
    const script = `import { createProgram } from ${JSON.stringify(new URL('../../dist/src/cli/main.js', import.meta.url).href)};
const program = createProgram();
const help = { '': program.helpInformation() };
const walk = (command, path) => { for (const sub of command.commands) { const name = [...path, sub.name()]; help[name.join(' ')] = sub.helpInformation(); walk(sub, name); } };
walk(program, []);
process.stdout.write(JSON.stringify(help));`;
    const eager = JSON.parse((await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root })).stdout) as Record<string, string>;
    expect(Object.keys(eager)).toContain('models fetch');
    for (const [path, expected] of Object.entries(eager)) {
      const { stdout } = await run(process.execPath, [cli, ...path.split(' ').filter(Boolean), '--help'], { cwd: root });
      expect(stdout, `vqa-llm ${path} --help`).toBe(expected);
    }
  });

  it("should give worker's options the defaults of the queue's worker and of the health endpoint", () => {
    expect(WORKER_COMMAND_DEFAULTS).toEqual({ concurrency: EVAL_WORKER_DEFAULTS.concurrency, lockDurationMs: EVAL_WORKER_DEFAULTS.lockDurationMs, healthHost: WORKER_HEALTH_DEFAULTS.host });
  });

  it("should quote the local model's step deadline in --llm-timeout's help as the library defines it", () => {
    expect(LOCAL_LLM_STEP_TIMEOUT_HELP_MS).toBe(LOCAL_CHAT_MODEL_DEFAULTS.llmStepTimeoutMs);
  });
});
