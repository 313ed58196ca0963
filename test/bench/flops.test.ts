import { describe, expect, it } from 'vitest';
import { crossAttentionCacheFlops, fusionFlops, fusionImageFlops, greedyDecodeFlops, questionFlops, vitFlops, type DecoderDims, type FusionDims } from '../../dist/bench/flops.js';
import { tinyBlip, tinyVle } from '../helpers/fixtures.js';

// Reference counts from torch.utils.flop_counter.FlopCounterMode over the exporter's own modules
// (models/vqa_llm_export: BlipCaptioner and VLEForVQA built from each folder's config.json on the meta device), for
// a question of 8 tokens and a greedy caption of 19 steps after the bos prompt. Torch's fusion count includes
// DeBERTa's relative-position projections (layers x {c2p, p2c} x 2 x 2*span x width^2), which onnxruntime folds into
// constants at load, so they are subtracted here as bench/flops.ts leaves them out.
const TORCH = {
  tiny: { captionVision: 827_648, crossAttention: 139_264, decoder: 1_124_800, vqaVision: 862_464, fusion: 1_861_888 - 131_072 },
  fullSize: { captionVision: 110_967_164_928, crossAttention: 16_335_765_504, decoder: 5_089_806_336, vqaVision: 285_392_277_504, fusion: 195_210_408_960 - 14_495_514_624 },
};

// The full-size stand-ins' dimensions (models/full-size/*/config.json): BLIP base, VLE base.
const blipDecoder: DecoderDims = { width: 768, intermediate: 3072, layers: 12, vocabulary: 30524, imageTokens: 577, imageWidth: 768 };
const vleFusion: FusionDims = {
  text: { width: 768, intermediate: 3072, layers: 12, relativePositions: 512, relativeTerms: 2, convKernel: 0, convGroups: 1 },
  width: 768,
  intermediate: 3072,
  layers: 6,
  imageTokens: 1297,
  labels: 3129,
};

describe('bench FLOP counts', () => {
  it('should count every stage of the tiny models as torch does, from their folders', () => {
    const flops = questionFlops({ captionFolder: tinyBlip, vqaFolder: tinyVle, questionTokens: 8, captionSteps: 19 });
    expect(flops).toBeDefined();
    for (const [stage, expected] of Object.entries(TORCH.tiny)) expect(flops![stage as keyof typeof TORCH.tiny].gflop * 1e9, stage).toBeCloseTo(expected, 0);
    const sum = Object.values(TORCH.tiny).reduce((total, value) => total + value, 0);
    expect(flops!.firstQuestion.gflop * 1e9).toBeCloseTo(sum, 0);
    expect(flops!.followUp.gflop).toBe(flops!.fusion.gflop);
  });

  it('should count the full-size stand-ins as torch does, fusion and decoder included', () => {
    expect(vitFlops({ tokens: 577, width: 768, intermediate: 3072, layers: 12, patch: 16 })).toBe(TORCH.fullSize.captionVision);
    expect(vitFlops({ tokens: 1297, width: 768, intermediate: 3072, layers: 12, patch: 16, projection: 768 })).toBe(TORCH.fullSize.vqaVision);
    expect(crossAttentionCacheFlops(blipDecoder)).toBe(TORCH.fullSize.crossAttention);
    expect(greedyDecodeFlops(blipDecoder, { promptTokens: 1, steps: 19 })).toBe(TORCH.fullSize.decoder);
    expect(fusionFlops(vleFusion, 8)).toBe(TORCH.fullSize.fusion);
  });

  it("should count fusion's image-only part as torch does: layer 0's image self-attention and cross-attention query, the text stream's first cross-attention keys and values", () => {
    // FlopCounterMode over those calls of the exporter's CoAttentionLayer (image tokens 1297, width 768).
    expect(fusionImageFlops(vleFusion)).toBe(15_877_770_240);
    // About 9% of the fusion of an 8-token question: what a follow-up no longer computes.
    expect(fusionImageFlops(vleFusion) / fusionFlops(vleFusion, 8)).toBeCloseTo(0.088, 3);
    const flops = questionFlops({ captionFolder: tinyBlip, vqaFolder: tinyVle, questionTokens: 8, captionSteps: 19 })!;
    expect(flops.fusionImage.gflop).toBeGreaterThan(0);
    expect(flops.fusionImage.gflop).toBeLessThan(flops.fusion.gflop);
  });

  it('should grow the fusion with the question and the decoder with every step', () => {
    expect(fusionFlops(vleFusion, 12)).toBeGreaterThan(fusionFlops(vleFusion, 8));
    const perStep = greedyDecodeFlops(blipDecoder, { promptTokens: 1, steps: 20 }) - greedyDecodeFlops(blipDecoder, { promptTokens: 1, steps: 19 });
    // One more token: the same matrix products, plus attention over one more cached position.
    expect(perStep).toBeGreaterThan(2 * 768 * 30524);
  });

  it('should give up rather than guess when a folder lacks a dimension', () => {
    expect(questionFlops({ captionFolder: tinyVle, vqaFolder: tinyVle, questionTokens: 8, captionSteps: 19 })).toBeUndefined();
  });
});
