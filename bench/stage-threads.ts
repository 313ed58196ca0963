// Each graph's time on its own at a given number of onnxruntime threads: the figures a PyTorch baseline is
// compared with at the same thread count, and each stage's share of the MatMul ceiling at those threads.
//
// createVisionModels({ cores: N }) under the default 'budget' scheduling gives every session N intra-op threads and
// lets one run at a time have them, so caption and candidates, asked one after the other, time each graph alone on
// N threads (onnxruntime has no per-run thread count; a model set is loaded per thread count).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { median, round } from './stats.js';

/** The stages timed, in ms (medians); decoderStep is decoder / decoderSteps. */
export interface StageTimes {
  captionPreprocess: number;
  captionVision: number;
  crossAttention: number;
  decoder: number;
  decoderSteps: number;
  decoderStep: number;
  vqaPreprocess: number;
  vqaVision: number;
  fusion: number;
}

export interface StageThreadsResult {
  iterations: number;
  question: string;
  /** VLE tokens of the question (special tokens included): the fusion's length. */
  questionTokens: number;
  /** Load time of each thread count's model set, ms. */
  loadMs: Record<string, number>;
  /** Keyed by thread count. */
  threads: Record<string, StageTimes>;
  /** Caption token ids and top answer at each thread count: the same at every one, or the bench says so. */
  outputs: Record<string, string>;
}

export const STAGE_QUESTION = 'What is in the picture?';

/**
 * Times every stage at each of `threads` onnxruntime thread counts: one model set per count, one unmeasured
 * question, then `iterations` first questions on the image (caches cleared), caption and candidates one after
 * the other.
 *
 * @example
 * const result = await benchStageThreads({ modelsDir, captionModel, vqaModel, image, threads: [1, 2], iterations: 3 });
 * result.threads['1'].fusion; // ms
 */
export async function benchStageThreads(options: {
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  image: string;
  threads: number[];
  iterations: number;
  quantized?: boolean;
  question?: string;
}): Promise<StageThreadsResult> {
  const bytes = readFileSync(options.image);
  const question = options.question ?? STAGE_QUESTION;
  const result: StageThreadsResult = { iterations: options.iterations, question, questionTokens: 0, loadMs: {}, threads: {}, outputs: {} };
  for (const threads of options.threads) {
    const loadStarted = performance.now();
    const vision = await createVisionModels({
      modelsDir: options.modelsDir,
      captionModel: options.captionModel,
      vqaModel: options.vqaModel,
      offline: true,
      cores: threads,
      scheduling: 'budget',
      quantized: options.quantized,
    });
    result.loadMs[threads] = round(performance.now() - loadStarted);
    try {
      result.questionTokens = vision.vqa.tokenize(question).length;
      await vision.caption(bytes, { numBeams: 1 });
      await vision.candidates(bytes, question);
      const samples: StageTimes[] = [];
      for (let iteration = 0; iteration < options.iterations; iteration += 1) {
        vision.clearCache();
        const caption = await vision.caption(bytes, { numBeams: 1 });
        const answers = await vision.candidates(bytes, question);
        const steps = caption.tokenIds.length;
        const decoder = caption.timings.decoder ?? 0;
        samples.push({
          captionPreprocess: caption.timings.preprocess ?? 0,
          captionVision: caption.timings.vision ?? 0,
          crossAttention: caption.timings.crossAttention ?? 0,
          decoder,
          decoderSteps: steps,
          decoderStep: decoder / Math.max(1, steps),
          vqaPreprocess: answers.timings.preprocess ?? 0,
          vqaVision: answers.timings.vision ?? 0,
          fusion: answers.timings.fusion ?? 0,
        });
        result.outputs[threads] = JSON.stringify([caption.tokenIds, answers.candidates[0]?.answer]);
      }
      result.threads[threads] = medianTimes(samples);
    } finally {
      await vision.dispose();
    }
  }
  return result;
}

function medianTimes(samples: StageTimes[]): StageTimes {
  const keys = Object.keys(samples[0]!) as (keyof StageTimes)[];
  return Object.fromEntries(keys.map((key) => [key, round(median(samples.map((sample) => sample[key])))])) as unknown as StageTimes;
}
