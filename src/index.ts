// The public API of vqa-llm, by group. Types are exported with `export type`.

// Vision models: BLIP captions and VLE top-k answers on onnxruntime-node, inference in worker threads.
export { createVisionModels, type VisionModelsOptions } from './runtime/vision-models.js';
export { BlipCaptioner, type VisionModelOptions } from './runtime/blip-captioner.js';
export { VleVqa, DEFAULT_TOP_K } from './runtime/vle-vqa.js';

// Images: the one place images are loaded, validated and turned into model tensors.
export { loadImage, type LoadImageOptions } from './image/load-image.js';
export { preprocessImage } from './image/preprocess.js';
export { parsePreprocessorConfig } from './image/preprocessor-config.js';
export { DEFAULT_IMAGE_LIMITS } from './image/image-defaults.js';

// Model folders: resolution (local, hub, URL), manifest checks, tokenizers.
export { resolveModel } from './models/resolve-model.js';
export { checkModelFolder, readManifest } from './models/manifest.js';
export type { ModelManifest, ManifestGraph, ManifestTensor, ModelKind } from './models/manifest.js';
export { loadTokenizer, type Tokenizer } from './models/tokenizer.js';
export { DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL, MODEL_ENV, defaultModelsDir, defaultCacheDir } from './models/defaults.js';

// Errors: each with a stable `name`, a `reason`, and an unbound-safe static `isInstance`.
export {
  VqaLlmError,
  InvalidImageError,
  InvalidQuestionError,
  InvalidOptionError,
  ModelNotFoundError,
  ModelIntegrityError,
  ModelDownloadError,
  GraphMismatchError,
  InferenceError,
} from './errors/index.js';

export type {
  ImageInput,
  LoadedImage,
  ImageLimits,
  PreprocessorConfig,
  FloatTensor,
  StageTimings,
  Candidate,
  CaptionOptions,
  CaptionResult,
  CandidatesOptions,
  CandidatesResult,
  VisionModels,
  ProgressEvent,
  ProgressCallback,
} from './types.js';
