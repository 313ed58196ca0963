import { describe, expect, it } from 'vitest';
import { evaluateTargets, LIMITS } from '../../dist/bench/targets.js';

const met = (rows: ReturnType<typeof evaluateTargets>) => Object.fromEntries(rows.map((row) => [row.id, row.met]));

describe('evaluateTargets', () => {
  it('should list every target of issue 14 once, in order, as not measured when nothing was', () => {
    const rows = evaluateTargets({});
    expect(rows.map((row) => row.id)).toEqual(['firstQuestion', 'followUp', 'pytorch', 'memory', 'coldStart', 'int8']);
    expect(rows.every((row) => row.met === null && row.measured === null)).toBe(true);
  });

  it('should count a figure exactly at its limit as met and one just past it as not met', () => {
    const atLimit = evaluateTargets({
      fullSize: true,
      firstQuestion: { ratio: LIMITS.firstQuestion, measuredMs: 1300, boundMs: 1000 },
      followUp: { ratio: LIMITS.followUp, measuredMs: 120, boundMs: 100 },
      pytorch: { speedup: LIMITS.pytorchSpeedup, stage: 'fusion', threads: '2' },
      memory: { ratio: LIMITS.memory, rssMiB: 1200, weightMiB: 1000 },
      coldStart: { askMs: LIMITS.coldStartMs },
      int8: { speedup: LIMITS.int8Speedup, graph: 'fusion', vnni: true, top1Agreement: 1, captionAgreement: 0.9 },
    });
    expect(Object.values(met(atLimit)).every((value) => value === true)).toBe(true);
    const past = evaluateTargets({
      fullSize: true,
      firstQuestion: { ratio: 1.31, measuredMs: 1310, boundMs: 1000 },
      followUp: { ratio: 1.21, measuredMs: 121, boundMs: 100 },
      pytorch: { speedup: 1.49, stage: 'fusion', threads: '2' },
      memory: { ratio: 1.21, rssMiB: 1210, weightMiB: 1000 },
      coldStart: { askMs: 501 },
      int8: { speedup: 1.79, graph: 'fusion', vnni: true, top1Agreement: 1, captionAgreement: 1 },
    });
    expect(Object.values(met(past)).every((value) => value === false)).toBe(true);
  });

  it('should report int8 without judging it on a CPU without VNNI', () => {
    const [row] = evaluateTargets({ int8: { speedup: 1.2, graph: 'decoderPerStep', vnni: false, top1Agreement: 0.95, captionAgreement: 0.5 } }).filter((candidate) => candidate.id === 'int8');
    expect(row!.met).toBeNull();
    expect(row!.measured).toBe(1.2);
    expect(row!.display).toContain('95%');
    expect(row!.note).toMatch(/no VNNI/);
  });

  it('should say why the PyTorch target is not judged when the baseline was skipped', () => {
    const [row] = evaluateTargets({ pytorch: { skipped: 'no .venv' } }).filter((candidate) => candidate.id === 'pytorch');
    expect(row!.met).toBeNull();
    expect(row!.note).toContain('no .venv');
  });

  it('should judge no target on the tiny models but the cold start, showing their figures as a check of the code path', () => {
    const rows = evaluateTargets({
      fullSize: false,
      firstQuestion: { ratio: 1.1, measuredMs: 110, boundMs: 100 },
      followUp: { ratio: 400, measuredMs: 100, boundMs: 0.25 },
      pytorch: { speedup: 3, stage: 'fusion', threads: '1' },
      memory: { ratio: 5, rssMiB: 100, weightMiB: 20 },
      coldStart: { askMs: 900 },
      int8: { speedup: 2, graph: 'fusion', vnni: true, top1Agreement: 1, captionAgreement: 1 },
    });
    for (const row of rows.filter((candidate) => candidate.id !== 'coldStart')) {
      expect(row.met, row.id).toBeNull();
      expect(row.measured, row.id).not.toBeNull();
      expect(row.note, row.id).toMatch(/tiny test models/);
    }
    const cold = rows.find((row) => row.id === 'coldStart')!;
    expect(cold.met).toBe(false);
    expect(cold.note).toBeUndefined();
  });

  it('should not judge a question faster than its bound, and say the ceiling was measured too low', () => {
    const [row] = evaluateTargets({ fullSize: true, followUp: { ratio: 0.83, measuredMs: 6718, boundMs: 8129 } }).filter((candidate) => candidate.id === 'followUp');
    expect(row!.met).toBeNull();
    expect(row!.measured).toBe(0.83);
    expect(row!.note).toMatch(/ceiling was measured low/);
  });

  it('should give the reason a part has no figure in its row', () => {
    const rows = evaluateTargets({ fullSize: true, skipped: { memory: 'memory (bench/load-memory.js) failed: out of memory', coldStart: 'not run: --skip-cold-start' } });
    expect(rows.find((row) => row.id === 'memory')).toMatchObject({ met: null, measured: null, note: expect.stringContaining('out of memory') });
    expect(rows.find((row) => row.id === 'coldStart')!.note).toContain('--skip-cold-start');
    expect(rows.find((row) => row.id === 'int8')!.note).toBe('not measured in this run');
  });

  it('should judge the PyTorch target on the unrounded speed-up, not the ONNX/PyTorch shown', () => {
    const [row] = evaluateTargets({ fullSize: true, pytorch: { speedup: 1.496, stage: 'fusion', threads: '2' } }).filter((candidate) => candidate.id === 'pytorch');
    expect(row!.display).toContain('ONNX/PyTorch 0.67');
    expect(row!.met).toBe(false);
  });

  it('should say why VNNI is unknown rather than blame a missing /proc/cpuinfo', () => {
    const [row] = evaluateTargets({ fullSize: true, int8: { speedup: 2, graph: 'fusion', vnni: null, vnniUnknown: '/proc/cpuinfo lists no x86 flags (not an x86 CPU?)', top1Agreement: null, captionAgreement: null } }).filter((candidate) => candidate.id === 'int8');
    expect(row!.met).toBeNull();
    expect(row!.note).toContain('no x86 flags');
    expect(row!.note).not.toContain('no /proc/cpuinfo');
  });
});
