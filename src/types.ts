// Types shared across the library. Code lives elsewhere; this file only describes shapes.

/** Anything `loadImage` accepts: a file path, an http(s) URL, a data URL, raw bytes, or an already loaded image. */
export type ImageInput = string | URL | Uint8Array | ArrayBuffer | LoadedImage;

/** A decoded image: 8-bit sRGB, 3 channels, EXIF orientation applied, alpha flattened. */
export interface LoadedImage {
  readonly kind: 'loaded-image';
  /** Interleaved RGB bytes, row-major, `width * height * 3` long. */
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  /** The container format sharp detected from the bytes (`jpeg`, `png`, `webp`, `gif`, `tiff`, `heif`). */
  readonly format: string;
  /** sha256 (hex) of the original encoded bytes: the cache key for everything that depends only on the image. */
  readonly hash: string;
  /** Size of the original encoded bytes. */
  readonly byteLength: number;
}

/** Limits enforced before an image is fully decoded. */
export interface ImageLimits {
  /** Largest accepted encoded size in bytes. Default 20 MiB. */
  maxBytes?: number;
  /** Largest accepted width * height, read from the header. Default 40 megapixels. */
  maxPixels?: number;
  /** Smallest accepted width and height. Default 1. */
  minSide?: number;
  /** Largest accepted long side / short side. Default 32. */
  maxAspectRatio?: number;
}

/** `preprocessor_config.json`, converted to camelCase at the boundary, every value explicit. */
export interface PreprocessorConfig {
  doConvertRgb: boolean;
  doResize: boolean;
  size: { height: number; width: number } | { shortestEdge: number };
  /** PIL resampling code: 2 bilinear, 3 bicubic. */
  resample: number;
  doCenterCrop: boolean;
  cropSize?: { height: number; width: number };
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

/** A dense float32 tensor in plain JavaScript, as passed between threads. */
export interface FloatTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** Wall-clock milliseconds per stage, e.g. `{ decode, preprocess, vision, decoder, fusion, llm }`. */
export type StageTimings = Record<string, number>;

export interface Candidate {
  answer: string;
  /** Softmax probability over all labels, as the upstream VLE pipeline reports it. */
  score: number;
}

export interface CaptionOptions {
  /** Text the caption continues, e.g. "a picture of"; removed from the returned caption. */
  prefix?: string;
  /** 1 = greedy. Default from generation_config.json. */
  numBeams?: number;
  /** Default: generation_config.json max_new_tokens, else its max_length minus the prompt length. */
  maxNewTokens?: number;
  minNewTokens?: number;
  /** 1 = off. */
  repetitionPenalty?: number;
  signal?: AbortSignal;
}

export interface CaptionResult {
  caption: string;
  /** Generated ids after the prompt (ends with eos when decoding stopped on it). */
  tokenIds: number[];
  /** True when the caption came from the per-image cache. */
  cached: boolean;
  timings: StageTimings;
  model: string;
}

export interface CandidatesOptions {
  /** How many candidates to return. Default 5. */
  topK?: number;
  /**
   * Cut the question to the length the model was fine-tuned on ([SEP] kept), as the tokens past it would otherwise run.
   * Default false, as upstream: the whole question runs (a warning says when it is longer than the fine-tuning
   * questions); only one longer than the text positions is refused with `InvalidQuestionError('too_long')`.
   */
  truncateQuestion?: boolean;
  signal?: AbortSignal;
}

/** Something the caller may want to know about an answer that did not stop it. */
export interface VqaWarning {
  /** `question_longer_than_fine_tuning`: the question ran whole, as upstream runs it, but is longer than the questions the model was fine-tuned on. */
  code: 'question_longer_than_fine_tuning';
  message: string;
}

export interface CandidatesResult {
  candidates: Candidate[];
  /**
   * True when the image's work came from a cache: its embeddings from the per-image cache (only the fusion graph
   * ran), or its fusion image state from the worker's cache (only fusion's text part ran).
   */
  imageCached: boolean;
  timings: StageTimings;
  model: string;
  /** Present when there is something to say; see {@link VqaWarning}. */
  warnings?: VqaWarning[];
}

/** What the VQA+LLM chain needs from the vision side; `createVisionModels` returns one. */
export interface VisionModels {
  loadImage(input: ImageInput, options?: { signal?: AbortSignal }): Promise<LoadedImage>;
  caption(image: ImageInput, options?: CaptionOptions): Promise<CaptionResult>;
  candidates(image: ImageInput, question: string, options?: CandidatesOptions): Promise<CandidatesResult>;
  /** Names of the loaded models, e.g. `{ caption: 'blip-image-captioning-base', vqa: 'vle-base-for-vqa' }`. */
  readonly models: { caption: string; vqa: string };
  dispose(): Promise<void>;
}

/** Progress of long work (downloads, model loading), delivered to one callback. */
export type ProgressEvent =
  | { status: 'start'; task: string; file?: string; total?: number }
  | { status: 'progress'; task: string; file?: string; loaded: number; total?: number; progress?: number }
  | { status: 'done'; task: string; file?: string }
  | { status: 'ready'; task: string };

export type ProgressCallback = (event: ProgressEvent) => void;
