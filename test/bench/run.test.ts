import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';

interface Row {
  id: string;
  met: boolean | null;
  measured: number | null;
  note?: string;
}

/** Runs dist/bench/run.js with `args`, writing into test/output/<name>/; returns its stdout, results.json and folder. */
async function runBench(name: string, args: string[]): Promise<{ stdout: string; results: any; folder: string }> {
  const folder = join(root, 'test', 'output', name);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  const out = join(folder, 'results.json');
  const { stdout } = await promisify(execFile)(process.execPath, ['dist/bench/run.js', ...args, '--out', out, '--chart', join(folder, 'latency.svg')], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  return { stdout, results: JSON.parse(readFileSync(out, 'utf8')), folder };
}

const row = (proof: { targets: Row[] }, id: string): Row => proof.targets.find((candidate) => candidate.id === id)!;

describe('npm run bench', () => {
  it('should write the proof with its targets table on the tiny models in one short run', { timeout: 240_000 }, async () => {
    const { stdout, results, folder } = await runBench('bench-run', ['--tiny-only', '--skip-server', '--skip-chain', '--iterations', '1', '--ceiling-rounds', '1', '--cold-start-runs', '1']);
    expect(stdout).toContain('targets:');
    const proof = results.proof;
    expect(proof.fullSize).toBe(false);
    expect(Object.keys(proof.ceiling).map(Number)).toContain(1);
    expect(proof.ceiling['1'].median).toBeGreaterThan(0);
    expect(proof.flops.fusion).toBeGreaterThan(0);
    expect(proof.flops.firstQuestion).toBeCloseTo(proof.flops.captionVision + proof.flops.crossAttention + proof.flops.decoder + proof.flops.vqaVision + proof.flops.fusion, 5);
    expect(proof.bound.firstQuestion.ratio).toBeGreaterThan(0);
    expect(Object.keys(proof.stages)).toContain('1');
    // The follow-up asks another question than the first: its fusion is counted for its own tokens.
    const tiny = results.runtime[0];
    expect(tiny.followUpTokens).toBeGreaterThan(0);
    expect(tiny.followUpTokens).not.toBe(tiny.questionTokens);
    expect(proof.flops.followUpTokens).toBe(tiny.followUpTokens);
    expect(proof.flops.followUp).not.toBe(proof.flops.fusion);
    // The tiny folder has no PyTorch stand-ins: skipped with a reason, never a crash.
    expect(proof.pytorch.skipped).toEqual(expect.any(String));
    expect(proof.targets.map((target: Row) => target.id)).toEqual(['firstQuestion', 'followUp', 'pytorch', 'memory', 'coldStart', 'int8']);
    expect(row(proof, 'coldStart').measured).toBeGreaterThan(0);
    expect(row(proof, 'coldStart').met).not.toBeNull();
    // The tiny models check the code path: no other target is judged on them.
    for (const target of proof.targets.filter((candidate: Row) => candidate.id !== 'coldStart')) expect(target.met, target.id).toBeNull();
    expect(row(proof, 'memory').measured).toBeGreaterThan(0);
    expect(row(proof, 'int8').note).toMatch(/full-size stand-ins only/);
    expect(readFileSync(join(folder, 'latency.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('should name the option that left a part out, and not run PyTorch without the per-graph timings', { timeout: 240_000 }, async () => {
    const { stdout, results } = await runBench('bench-run-skips', ['--tiny-only', '--skip-server', '--skip-chain', '--skip-stages', '--skip-memory', '--skip-cold-start', '--iterations', '1', '--ceiling-rounds', '1']);
    expect(stdout).not.toContain('## PyTorch eager baseline at');
    const proof = results.proof;
    expect(results.stageThreads).toBeNull();
    expect(proof.pytorch.skipped).toContain('--skip-stages');
    expect(row(proof, 'pytorch').note).toContain('--skip-stages');
    expect(row(proof, 'memory')).toMatchObject({ measured: null, note: expect.stringContaining('--skip-memory') });
    expect(row(proof, 'coldStart')).toMatchObject({ measured: null, met: null, note: expect.stringContaining('--skip-cold-start') });
  });
});
