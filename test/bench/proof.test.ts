import { describe, expect, it } from 'vitest';
import { buildProof, cpuFeatures, type ProofInputs } from '../../dist/bench/proof.js';
import { summarizeCeiling } from '../../dist/bench/matmul-ceiling.js';

const estimate = (gflop: number) => ({ gflop });

function inputs(overrides: Partial<ProofInputs> = {}): ProofInputs {
  const stage = { captionPreprocess: 30, captionVision: 800, crossAttention: 100, decoder: 950, decoderSteps: 19, decoderStep: 50, vqaPreprocess: 20, vqaVision: 2000, fusion: 1200 };
  return {
    modelSet: 'stand-ins',
    fullSize: true,
    machine: { cpu: 'test', cores: 2, avx512: true, vnni: true, node: 'v20', onnxruntime: '1.30.0' },
    ceiling: {
      1: summarizeCeiling(1, 1, new Map([['a', [100]]])),
      2: summarizeCeiling(2, 1, new Map([['a', [200]]])),
    },
    allCores: 2,
    flops: { captionVision: estimate(110), crossAttention: estimate(16), decoder: estimate(5), vqaVision: estimate(285), fusion: estimate(180), fusionImage: estimate(16), firstQuestion: estimate(596), followUp: estimate(180) },
    questionTokens: 8,
    followUpTokens: 7,
    captionSteps: 19,
    firstQuestion: { wall: 3576, followUpWall: 1080, stages: { captionVision: 440, fusion: 900 } },
    stageThreads: { iterations: 1, question: 'q', questionTokens: 8, loadMs: {}, outputs: {}, threads: { 1: stage, 2: { ...stage, captionVision: 440, decoderStep: 40, vqaVision: 1100, fusion: 650 } } },
    pytorch: null,
    int8: null,
    coldStart: null,
    memory: null,
    ...overrides,
  };
}

describe('buildProof', () => {
  it('should put the first question and the follow-up against their GFLOP at the all-cores ceiling', () => {
    const proof = buildProof(inputs());
    // 596 GFLOP at 200 GFLOP/s = 2,980 ms; 180 GFLOP = 900 ms.
    expect(proof.bound.firstQuestion).toEqual({ gflop: 596, boundMs: 2980, measuredMs: 3576, ratio: 1.2 });
    expect(proof.bound.followUp.ratio).toBe(1.2);
    expect(proof.targets.find((row) => row.id === 'firstQuestion')!.met).toBe(true);
    expect(proof.targets.find((row) => row.id === 'followUp')!.met).toBe(true);
  });

  it("should also put the follow-up against the work it does, fusion's cached image part left out", () => {
    const proof = buildProof(inputs());
    // 180 - 16 = 164 GFLOP at 200 GFLOP/s = 820 ms; measured 1,080 ms.
    expect(proof.bound.followUpWork).toEqual({ gflop: 164, boundMs: 820, measuredMs: 1080, ratio: 1.317 });
    expect(proof.targets.find((row) => row.id === 'followUp')!.note).toContain('reuses its image part (16 GFLOP)');
    expect(proof.targets.find((row) => row.id === 'followUp')!.note).toContain('1.32x the bound of the work it does');
  });

  it("should rate each stage against the ceiling at the threads it ran on", () => {
    const proof = buildProof(inputs());
    // 110 GFLOP in 800 ms = 137.5 GFLOP/s: 1.375x the 1-thread ceiling of 100; in 440 ms on 2 threads, 1.25x 200.
    expect(proof.stages['1']!.captionVision).toEqual({ ms: 800, gflop: 110, gflopPerSecond: 137.5, shareOfCeiling: 1.375 });
    expect(proof.stages['2']!.captionVision!.shareOfCeiling).toBe(1.25);
    expect(proof.firstQuestionStages.captionVision!.shareOfCeiling).toBe(1.25);
    expect(proof.firstQuestionStages.vqaVision).toBeUndefined();
  });

  it('should divide ONNX by PyTorch per stage and thread count and judge the slowest stage', () => {
    const torch = { captionVision: 1600, decoderStep: 100, vqaVision: 4000, fusion: 2400 };
    const proof = buildProof(inputs({ pytorch: { torch: '2.13.0', threads: { 1: torch, 2: { ...torch, fusion: 910 }, 4: torch } } }));
    if (!proof.pytorch || 'skipped' in proof.pytorch) throw new Error('expected a comparison');
    expect(proof.pytorch.onnxOverPytorch['1']).toEqual({ captionVision: 0.5, decoderStep: 0.5, vqaVision: 0.5, fusion: 0.5 });
    expect(proof.pytorch.onnxOverPytorch['2']!.fusion).toBe(0.714);
    // 4 threads has no ONNX figures: left out rather than compared with nothing.
    expect(proof.pytorch.onnxOverPytorch['4']).toBeUndefined();
    const row = proof.targets.find((candidate) => candidate.id === 'pytorch')!;
    expect(row.met).toBe(false);
    expect(row.display).toContain('fusion at 2 thread(s)');
  });

  it('should judge int8 on its slowest graph and carry the agreement', () => {
    const int8 = {
      speedup: { 'first.captionVision': 2.4, 'first.crossAttention': 2.1, 'first.decoderPerStep': 1.9, 'first.vqaVision': 2.5, 'first.fusion': 2.2, 'first.wall': 2.3, load: 3 },
      agreement: { top1SameShare: 0.9, captionIdenticalShare: 0.75 },
    } as unknown as NonNullable<ProofInputs['int8']>;
    const proof = buildProof(inputs({ int8 }));
    expect(proof.int8).toMatchObject({ slowestGraph: 'decoderPerStep', slowestGraphSpeedup: 1.9, firstQuestionSpeedup: 2.3, top1Agreement: 0.9, captionAgreement: 0.75, vnni: true });
    expect(proof.targets.find((row) => row.id === 'int8')!.met).toBe(true);
  });

  it("should record the follow-up question's own token count beside the first question's", () => {
    const proof = buildProof(inputs());
    expect(proof.flops).toMatchObject({ questionTokens: 8, followUpTokens: 7, followUp: 180 });
  });

  it('should leave the bounds unjudged, with the reason, when the FLOPs could not be counted', () => {
    const reason = 'cannot count the FLOPs of a and b: a dimension is missing from their config.json';
    const proof = buildProof(inputs({ flops: null, skipped: { firstQuestion: reason, followUp: reason }, coldStart: { runs: 1, command: 'ask', askMs: 400, askRunsMs: [400], importMs: 100, importProcessMs: 150, nodeStartMs: 40 } }));
    expect(proof.flops).toBeNull();
    expect(proof.bound).toBeNull();
    expect(proof.stages).toEqual({});
    for (const id of ['firstQuestion', 'followUp']) expect(proof.targets.find((row) => row.id === id)).toMatchObject({ met: null, note: reason });
    expect(proof.targets.find((row) => row.id === 'coldStart')!.met).toBe(true);
  });

  it('should carry why VNNI is unknown into the int8 row', () => {
    const int8 = { speedup: { 'first.fusion': 2 }, agreement: null } as unknown as NonNullable<ProofInputs['int8']>;
    const machine = { cpu: 'arm', cores: 2, ...cpuFeatures('processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n'), node: 'v20', onnxruntime: '1.30.0' };
    const proof = buildProof(inputs({ machine, int8 }));
    expect(proof.targets.find((row) => row.id === 'int8')!.note).toMatch(/no x86 flags/);
  });
});

describe('cpuFeatures', () => {
  it('should read AVX-512 and VNNI from x86 flags', () => {
    expect(cpuFeatures('processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n')).toEqual({ avx512: true, vnni: true });
    expect(cpuFeatures('flags\t\t: fpu sse avx2 avx_vnni\n')).toEqual({ avx512: false, vnni: true });
  });

  it('should tell a CPU without x86 flags (ARM) from a missing /proc/cpuinfo', () => {
    expect(cpuFeatures('processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n')).toEqual({ avx512: null, vnni: null, featuresUnknown: expect.stringMatching(/no x86 flags/) });
    expect(cpuFeatures(undefined).featuresUnknown).toBe('no /proc/cpuinfo');
  });
});

describe('summarizeCeiling', () => {
  it("should take the median of each shape's median, and keep the best single run", () => {
    const ceiling = summarizeCeiling(2, 3, new Map([['a', [100, 10, 110]], ['b', [200, 190, 400]], ['c', [50, 60, 55]]]));
    expect(ceiling.shapes).toEqual({ a: { median: 100, best: 110 }, b: { median: 200, best: 400 }, c: { median: 55, best: 60 } });
    expect(ceiling.median).toBe(100);
    expect(ceiling.best).toBe(400);
    expect(ceiling.bestShape).toBe('b');
  });
});
