import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';

describe('npm run bench', () => {
  it('should write the proof with its targets table on the tiny models in one short run', { timeout: 240_000 }, async () => {
    const folder = join(root, 'test', 'output', 'bench-run');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    const out = join(folder, 'results.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['dist/bench/run.js', '--tiny-only', '--skip-server', '--skip-chain', '--iterations', '1', '--ceiling-rounds', '1', '--cold-start-runs', '1', '--out', out, '--chart', join(folder, 'latency.svg')],
      { cwd: root, maxBuffer: 64 * 1024 * 1024 },
    );
    expect(stdout).toContain('targets:');
    const results = JSON.parse(readFileSync(out, 'utf8'));
    const proof = results.proof;
    expect(proof.fullSize).toBe(false);
    expect(Object.keys(proof.ceiling).map(Number)).toContain(1);
    expect(proof.ceiling['1'].median).toBeGreaterThan(0);
    expect(proof.flops.fusion).toBeGreaterThan(0);
    expect(proof.flops.firstQuestion).toBeCloseTo(proof.flops.captionVision + proof.flops.crossAttention + proof.flops.decoder + proof.flops.vqaVision + proof.flops.fusion, 5);
    expect(proof.bound.firstQuestion.ratio).toBeGreaterThan(0);
    expect(Object.keys(proof.stages)).toContain('1');
    // The tiny folder has no PyTorch stand-ins: skipped with a reason, never a crash.
    expect(proof.pytorch.skipped).toEqual(expect.any(String));
    expect(proof.targets.map((row: { id: string }) => row.id)).toEqual(['firstQuestion', 'followUp', 'pytorch', 'memory', 'coldStart', 'int8']);
    expect(proof.targets.find((row: { id: string }) => row.id === 'coldStart').measured).toBeGreaterThan(0);
    expect(readFileSync(join(folder, 'latency.svg'), 'utf8')).toMatch(/^<svg/);
  });
});
