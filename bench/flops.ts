// Analytic FLOP counts (a multiply-add = 2 FLOP; matrix products only: softmax, norms and activations are
// noise beside them) of every graph a question runs, from each model folder's config.json and vqa-llm.json.
// Counted as onnxruntime runs the graphs after loading them: products of constants alone (DeBERTa's relative
// position embeddings through each layer's key and query projections) are folded into constants at load, so they
// are not counted; PyTorch eager computes them on every run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FlopEstimate {
  gflop: number;
}

/** The stages of one question, each in GFLOP. */
export interface QuestionFlops {
  captionVision: FlopEstimate;
  /** The caption's cross-attention keys and values over the image tokens (once per caption). */
  crossAttention: FlopEstimate;
  /** Greedy decoding of `captionSteps` tokens with the self-attention cache. */
  decoder: FlopEstimate;
  vqaVision: FlopEstimate;
  /** Text encoder, co-attention layers, poolers and classifier, for `questionTokens` tokens. */
  fusion: FlopEstimate;
  /**
   * The part of `fusion` that depends only on the image (layer 0's image self-attention and cross-attention queries,
   * the text stream's first cross-attention keys and values): computed once per image, a follow-up reuses it.
   */
  fusionImage: FlopEstimate;
  /** Caption and candidates on a new image: every stage above. */
  firstQuestion: FlopEstimate;
  /**
   * A further question on the same image: fusion only (caption and image embeddings are cached), counted whole as
   * issue 14 sets its bound, though the runtime reuses `fusionImage` from its cache.
   */
  followUp: FlopEstimate;
}

export interface VisionDims {
  tokens: number;
  width: number;
  intermediate: number;
  layers: number;
  patch: number;
  /** Width of a linear projection after the tower (VLE's image projection into the fusion width), if any. */
  projection?: number;
}

/** A pre-norm ViT: patch embedding, then per layer QKV, attention scores and mix, output projection, MLP. */
export function vitFlops(dims: VisionDims): number {
  const { tokens: t, width: d, intermediate: i, layers, patch } = dims;
  const patchEmbedding = 2 * (t - 1) * 3 * patch * patch * d;
  const perLayer = 2 * t * d * 3 * d + 2 * t * t * d * 2 + 2 * t * d * d + 2 * t * d * i * 2;
  return patchEmbedding + layers * perLayer + (dims.projection ? 2 * t * d * dims.projection : 0);
}

export interface DecoderDims {
  width: number;
  intermediate: number;
  layers: number;
  vocabulary: number;
  /** Image tokens the cross-attention reads, and their width. */
  imageTokens: number;
  imageWidth: number;
}

/** Keys and values of every decoder layer's cross-attention over the image tokens. */
export function crossAttentionCacheFlops(dims: DecoderDims): number {
  return dims.layers * 2 * 2 * dims.imageTokens * dims.imageWidth * dims.width;
}

/**
 * Greedy decoding with a self-attention cache: the first step reads the prompt's `promptTokens`, each later step
 * one token with every earlier one cached; each step ends in the LM head (transform and vocabulary projection).
 */
export function greedyDecodeFlops(dims: DecoderDims, options: { promptTokens: number; steps: number }): number {
  const { width: d, intermediate: i, layers, vocabulary, imageTokens } = dims;
  let total = 0;
  for (let step = 0; step < options.steps; step += 1) {
    const fresh = step === 0 ? options.promptTokens : 1;
    const seen = step === 0 ? fresh : options.promptTokens + step;
    // Self QKV and output, cross query and output: 6 d x d products; cross keys and values come from the cache.
    const perLayer = 2 * fresh * d * d * 6 + 2 * 2 * fresh * seen * d + 2 * 2 * fresh * imageTokens * d + 2 * 2 * fresh * d * i;
    total += layers * perLayer + 2 * fresh * d * d + 2 * fresh * d * vocabulary;
  }
  return total;
}

export interface FusionDims {
  text: {
    width: number;
    intermediate: number;
    layers: number;
    /** Rows of the relative position table each query and key meets (c2p, p2c); 0 without relative attention. */
    relativePositions: number;
    /** 0, 1 or 2: which of c2p and p2c the attention adds. */
    relativeTerms: number;
    convKernel: number;
    convGroups: number;
  };
  width: number;
  intermediate: number;
  layers: number;
  imageTokens: number;
  labels: number;
}

/** One co-attention layer of a stream of `own` tokens reading the other stream's `other` tokens. */
function coAttentionLayerFlops(own: number, other: number, d: number, i: number): number {
  // Self QKV and output, cross query and output: 6 products on own tokens; cross keys and values: 2 on the other's.
  const projections = 2 * d * d * (6 * own + 2 * other);
  const attention = 2 * 2 * own * own * d + 2 * 2 * own * other * d;
  return projections + attention + 2 * 2 * own * d * i;
}

/** VLE's fusion graph for a question of `questionTokens` tokens (special tokens included). */
export function fusionFlops(dims: FusionDims, questionTokens: number): number {
  const L = questionTokens;
  const t = dims.text;
  const textLayer =
    2 * L * t.width * t.width * 4 + 2 * 2 * L * L * t.width + t.relativeTerms * 2 * L * t.relativePositions * t.width + 2 * 2 * L * t.width * t.intermediate;
  const conv = t.convKernel > 0 ? (2 * L * t.width * t.width * t.convKernel) / Math.max(1, t.convGroups) : 0;
  const textEncoder = t.layers * textLayer + conv + 2 * L * t.width * dims.width;
  const { width: d, intermediate: i, imageTokens: I } = dims;
  const coAttention = dims.layers * (coAttentionLayerFlops(L, I, d, i) + coAttentionLayerFlops(I, L, d, i));
  const head = 2 * 2 * d * d + 2 * (2 * d) * (2 * d) + 2 * (2 * d) * dims.labels;
  return textEncoder + coAttention + head;
}

/** The image-only part of VLE's fusion (see QuestionFlops.fusionImage); it does not depend on the question. */
export function fusionImageFlops(dims: FusionDims): number {
  const { width: d, imageTokens: I } = dims;
  // Image self-attention QKV and output, image cross-attention query, text cross-attention keys and values: 7
  // products on the image tokens; the image self-attention's scores and weighted sum.
  return 2 * d * d * 7 * I + 2 * 2 * I * I * d;
}

function readJson(path: string): Record<string, any> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;
  } catch {
    return undefined;
  }
}

const numbers = (...values: unknown[]): boolean => values.every((value) => typeof value === 'number' && Number.isFinite(value));

/** Tokens of a graph's output `[batch, tokens, width]` in the manifest. */
function outputTokens(folder: string, graph: string): number | undefined {
  const shape = readJson(join(folder, 'vqa-llm.json'))?.graphs?.[graph]?.outputs?.[0]?.shape;
  return Array.isArray(shape) && typeof shape[1] === 'number' ? shape[1] : undefined;
}

function visionDims(config: Record<string, any> | undefined, tokens: number | undefined, projection?: number): VisionDims | undefined {
  const vision = config?.vision_config;
  if (!vision || tokens === undefined || !numbers(vision.hidden_size, vision.intermediate_size, vision.num_hidden_layers, vision.patch_size)) return undefined;
  return { tokens, width: vision.hidden_size, intermediate: vision.intermediate_size, layers: vision.num_hidden_layers, patch: vision.patch_size, projection };
}

/** BLIP's decoder dimensions from a caption model folder. */
export function decoderDims(captionFolder: string): DecoderDims | undefined {
  const config = readJson(join(captionFolder, 'config.json'));
  const text = config?.text_config;
  const imageTokens = outputTokens(captionFolder, 'visionEncoder');
  if (!text || imageTokens === undefined || !numbers(text.hidden_size, text.intermediate_size, text.num_hidden_layers, text.vocab_size)) return undefined;
  const imageWidth = text.encoder_hidden_size ?? config?.vision_config?.hidden_size;
  if (!numbers(imageWidth)) return undefined;
  return { width: text.hidden_size, intermediate: text.intermediate_size, layers: text.num_hidden_layers, vocabulary: text.vocab_size, imageTokens, imageWidth };
}

/** VLE's fusion dimensions from a VQA model folder (its config.json as the exporter writes it, defaults filled in). */
export function fusionDims(vqaFolder: string): FusionDims | undefined {
  const config = readJson(join(vqaFolder, 'config.json'));
  const text = config?.text_config;
  const imageTokens = outputTokens(vqaFolder, 'imageEncoder');
  const labels = config?.num_labels ?? (config?.id2label ? Object.keys(config.id2label).length : undefined);
  if (!config || !text || imageTokens === undefined || !numbers(config.hidden_size, config.intermediate_size, config.num_hidden_layers, labels, text.hidden_size, text.intermediate_size, text.num_hidden_layers)) {
    return undefined;
  }
  const terms = typeof text.pos_att_type === 'string' ? text.pos_att_type.toLowerCase().split('|').map((part: string) => part.trim()) : Array.isArray(text.pos_att_type) ? text.pos_att_type : [];
  const relative = text.relative_attention === true;
  const maxRelative = typeof text.max_relative_positions === 'number' && text.max_relative_positions >= 1 ? text.max_relative_positions : (text.max_position_embeddings ?? 512);
  const span = typeof text.position_buckets === 'number' && text.position_buckets > 0 ? text.position_buckets : maxRelative;
  return {
    text: {
      width: text.hidden_size,
      intermediate: text.intermediate_size,
      layers: text.num_hidden_layers,
      relativePositions: relative ? 2 * span : 0,
      relativeTerms: relative ? ['c2p', 'p2c'].filter((term) => terms.includes(term)).length : 0,
      convKernel: text.conv_kernel_size ?? 0,
      convGroups: text.conv_groups ?? 1,
    },
    width: config.hidden_size,
    intermediate: config.intermediate_size,
    layers: config.num_hidden_layers,
    imageTokens,
    labels,
  };
}

/** Estimates for the vision towers alone (BLIP's and VLE's ViT), as 0.1's bench reported them. */
export function transformerFlops(captionFolder: string, vqaFolder: string): Record<string, FlopEstimate | undefined> {
  const blip = visionDims(readJson(join(captionFolder, 'config.json')), outputTokens(captionFolder, 'visionEncoder'));
  const vqaConfig = readJson(join(vqaFolder, 'config.json'));
  const vle = visionDims(vqaConfig, outputTokens(vqaFolder, 'imageEncoder'), vqaConfig?.hidden_size);
  return {
    captionVision: blip && { gflop: vitFlops(blip) / 1e9 },
    vqaVision: vle && { gflop: vitFlops(vle) / 1e9 },
  };
}

/**
 * Every stage of a question: a caption of `captionSteps` greedy tokens after `captionPromptTokens` prompt tokens
 * (BLIP's unprompted caption: 1, the bos token), and VQA for a question of `questionTokens` tokens. Undefined when
 * a folder's config lacks a dimension.
 *
 * @example
 * const flops = questionFlops({ captionFolder, vqaFolder, questionTokens: 8, captionSteps: 19 });
 * const boundMs = (flops!.firstQuestion.gflop / ceilingGflops) * 1000;
 */
export function questionFlops(options: { captionFolder: string; vqaFolder: string; questionTokens: number; captionSteps: number; captionPromptTokens?: number }): QuestionFlops | undefined {
  const towers = transformerFlops(options.captionFolder, options.vqaFolder);
  const decoder = decoderDims(options.captionFolder);
  const fusion = fusionDims(options.vqaFolder);
  if (!towers.captionVision || !towers.vqaVision || !decoder || !fusion) return undefined;
  const gflop = (flop: number): FlopEstimate => ({ gflop: flop / 1e9 });
  const stages = {
    captionVision: towers.captionVision,
    crossAttention: gflop(crossAttentionCacheFlops(decoder)),
    decoder: gflop(greedyDecodeFlops(decoder, { promptTokens: options.captionPromptTokens ?? 1, steps: options.captionSteps })),
    vqaVision: towers.vqaVision,
    fusion: gflop(fusionFlops(fusion, options.questionTokens)),
  };
  const firstQuestion = Object.values(stages).reduce((sum, stage) => sum + stage.gflop, 0);
  return { ...stages, fusionImage: gflop(fusionImageFlops(fusion)), firstQuestion: { gflop: firstQuestion }, followUp: { gflop: stages.fusion.gflop } };
}
