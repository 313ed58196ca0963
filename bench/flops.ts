// Analytic FLOP counts (multiply-add = 2 FLOP) for the vision towers, from each folder's config and manifest.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FlopEstimate {
  gflop: number;
}

interface VisionDims {
  tokens: number;
  width: number;
  intermediate: number;
  layers: number;
  patch: number;
}

/** A pre-norm ViT: patch embedding, then per layer QKV, attention scores and mix, output projection, MLP. */
export function vitFlops(dims: VisionDims): number {
  const { tokens: t, width: d, intermediate: i, layers, patch } = dims;
  const patchEmbedding = 2 * (t - 1) * 3 * patch * patch * d;
  const perLayer = 2 * t * d * 3 * d + 2 * t * t * d * 2 + 2 * t * d * d + 2 * t * d * i * 2;
  return patchEmbedding + layers * perLayer;
}

function readJson(path: string): Record<string, any> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  } catch {
    return undefined;
  }
}

function visionDims(folder: string, graph: string): VisionDims | undefined {
  const config = readJson(join(folder, 'config.json'));
  const manifest = readJson(join(folder, 'vqa-llm.json'));
  const vision = config?.vision_config;
  const shape = manifest?.graphs?.[graph]?.outputs?.[0]?.shape;
  if (!vision || !Array.isArray(shape) || typeof shape[1] !== 'number') return undefined;
  const width = vision.hidden_size;
  const intermediate = vision.intermediate_size;
  const layers = vision.num_hidden_layers;
  const patch = vision.patch_size;
  if (![width, intermediate, layers, patch].every((value) => typeof value === 'number')) return undefined;
  return { tokens: shape[1], width, intermediate, layers, patch };
}

/** Estimates for the stages whose architecture is a plain ViT: the BLIP and VLE vision encoders. */
export function transformerFlops(captionFolder: string, vqaFolder: string): Record<string, FlopEstimate | undefined> {
  const blip = visionDims(captionFolder, 'visionEncoder');
  const vle = visionDims(vqaFolder, 'imageEncoder');
  return {
    captionVision: blip && { gflop: vitFlops(blip) / 1e9 },
    vqaVision: vle && { gflop: vitFlops(vle) / 1e9 },
  };
}
