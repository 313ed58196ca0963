// The public API of vqa-llm, by group. Types are exported with `export type`.

// Vision models: BLIP captions and VLE top-k answers on onnxruntime-node, inference in worker threads.
export { createVisionModels, type VisionModelsOptions } from './runtime/vision-models.js';
export { BlipCaptioner } from './runtime/blip-captioner.js';
export type { VisionModelOptions } from './runtime/vision-model-base.js';
export { VleVqa, DEFAULT_TOP_K } from './runtime/vle-vqa.js';
export { deferVisionModels } from './runtime/deferred-vision-models.js';
// The cores the process may use, shared by the vision graphs and the embedded LLM (docs/performance.md).
export { CoreBudget, sharedCoreBudget, type CoreBudgetEvent, type CoreRelease, type CoreRequest } from './runtime/core-budget.js';

// The VQA+LLM chain (LangChain.js): caption + candidates into a prompt, an LLM picks and rephrases, with fallbacks.
export { createVqaChain, VQA_ANSWER_DELTA_EVENT, type VqaChain } from '../chains/vqa-chain.js';
export { createVqaChat, VqaChatSession, type VqaChat } from '../chains/vqa-chat.js';
export { createChatModel, CHAT_MODEL_DEFAULTS, type ChatModelOptions } from './llm/index.js';
// The embedded LLM: a GGUF instruct model in this process (node-llama-cpp, an optional dependency loaded on first use).
export { createLocalChatModel, ChatLocalLlama, LOCAL_CHAT_MODEL_DEFAULTS, locateLocalModel, fetchLocalModel, type FetchLocalModelOptions, type LocalChatModelOptions, type LlmProvider } from './llm/index.js';
export { DEFAULT_LOCAL_LLM } from './models/defaults.js';
export { LocalLlmError, type LocalLlmReason } from './errors/index.js';
export { validateQuestion } from './question.js';
export { vqaPromptV1, VQA_PROMPT_VERSION } from '../prompts/vqa-v1.js';
export { FEW_SHOT_EXAMPLES } from '../prompts/few-shot.js';
export type { VqaInput, VqaResult, VqaStreamChunk, VqaChainOptions, FallbackCode, FallbackReason, LlmUsage, VqaTurn } from '../chains/types.js';

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
  VqaWarning,
  VisionModels,
  ProgressEvent,
  ProgressCallback,
} from './types.js';

// Evaluation (issue 6): the VQAv2 accuracy metric exactly as vqaEval.py, dataset loaders, the resumable two-arm run
// (VQA only vs VQA+LLM) and its summary.
export { vqaAccuracy, normalizeAnswer, processPunctuation, processDigitArticle, stripAnswer } from './eval/vqa-accuracy.js';
export { loadVqaV2Dataset, loadJsonlDataset, loadReferenceAnswers, inferAnswerType, formatImageName, type VqaV2DatasetOptions } from './eval/dataset.js';
export { readPredictions, parsePredictions, type PredictionsFile } from './eval/predictions.js';
export { runEval, toPredictionRecord, RUN_EVAL_DEFAULTS, type EvalChain, type EvalProgress, type RunEvalOptions, type RunEvalResult } from './eval/run-eval.js';
export { summarizeEval, ARM_LABELS, LATENCY_STAGES } from './eval/summary.js';
export type { EvalSummary, ArmSummary, AccuracyGroup, LlmEffect, AnswerForm, LatencyStats } from './eval/summary.js';
export { formatSummary } from './eval/format-summary.js';
export { EvalDataError, type EvalDataReason } from './eval/eval-data-error.js';
export type { EvalQuestion, ReferenceQuestion, ReferenceSet, PredictionRecord, ArmPrediction, LlmArmPrediction, EvalIssue, EvalIssueCode, QuestionId, AnswerType, ArmName, StageLatencies } from './eval/types.js';

// Serving (issue 4): the HTTP server (OpenAI-compatible chat completions, /v1/vqa, demo page, metrics) and the
// LangChain agent tool.
export { createVqaServer, startVqaServer, type VqaServerOptions, type RunningVqaServer } from './server/vqa-server.js';
export { SERVER_DEFAULTS } from './server/server-defaults.js';
export { ApiError, type ApiErrorBody, type ApiErrorType } from './server/api-error.js';
export { parseChatRequest, type ChatRequest } from './server/chat-request.js';
export { defaultImageFetcher, type ImageFetcher } from './server/image-source.js';
export {
  createVisualQuestionAnsweringTool,
  createVisionQuestionAnsweringTool,
  visualQuestionAnsweringSchema,
  type VisualQuestionAnsweringToolOptions,
  type VisualQuestionAnsweringInput,
} from './tools/visual-question-answering-tool.js';

// In-process adapters: the chain as a LangChain chat model. The AI SDK provider is the subpath `vqa-llm/ai-sdk`, so
// that users without the AI SDK never load it.
export { ChatVqaLlm, type ChatVqaLlmCallOptions, type ChatVqaLlmFields } from './adapters/chat-vqa-llm.js';
export { InvalidConversationError, type InvalidConversationReason } from './errors/index.js';
export type { VqaAdapterOptions, VqaAdapterImageOptions } from './adapters/adapter-options.js';

// Hardening (issue 5): the SSRF-safe image fetcher, the LLM circuit breaker and retry policy, graceful shutdown.
export { safeFetchImage, SAFE_FETCH_DEFAULTS, refusedAddressReason, type UrlPolicy, type SafeFetchOptions, type HostResolver, type ResolvedAddress } from './net/index.js';
export { createCircuitBreaker, CIRCUIT_BREAKER_DEFAULTS, type CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from './llm/circuit-breaker.js';
export { retryDelayMs, retryAfterMs, isRetryableLlmError, RETRY_BACKOFF_DEFAULTS, type RetryBackoff } from './llm/retry-policy.js';
export { shutdownVqaServer } from './server/vqa-server.js';
export { createImageFetcher } from './server/image-source.js';
export { createReadinessProbe, type ReadinessProbe, type ReadinessState } from './server/readiness.js';
export { hardenImageDecoders, checkImageHeader, type ImageHeaderLimits } from './server/image-guard.js';

// Checkpoints: safetensors and PyTorch state dicts read tensor by tensor, without executing anything (no Python).
export { openCheckpoint, CHECKPOINT_FILES } from './checkpoints/index.js';
export type { Checkpoint, CheckpointFormat, CheckpointTensor, ExpectKeysOptions, ReadTensorOptions, SourceDtype, TensorData, TensorDtype, TensorInfo } from './checkpoints/index.js';
export { CheckpointError, type CheckpointReason } from './errors/index.js';

// Upstream checkpoints -> model folders with Node alone: the hub client and the converter (shipped graph templates
// filled with the checkpoint's weights). resolveModel and the CLI use both for upstream ids.
export { convertCheckpoint, listTemplates, readTemplate, shippedTemplatesFolder, type ConvertCheckpointOptions } from './convert/index.js';
export type { ModelTemplate } from './convert/index.js';
export { downloadHubSnapshot, selectCheckpointFiles, type DownloadHubSnapshotOptions, type HubSnapshot, type HubFile } from './models/hub/index.js';
export type { ResolveModelOptions } from './models/resolve-model.js';
export { ConversionError, type ConversionReason, type ConfigDifference } from './errors/index.js';

// Beyond one machine (issue 15): image work shared between replicas through Redis, evaluation on BullMQ workers.
// ioredis and bullmq load only when these are used.
export { createSharedImageCache, SharedImageCache, SHARED_CACHE_DEFAULTS, type SharedImageCacheOptions, type SharedCaption } from './distributed/shared-image-cache.js';
export { registerSharedCacheMetrics, type SharedCacheOutcome } from './distributed/shared-cache-metrics.js';
export { runQueuedEval, QUEUED_EVAL_DEFAULTS, type RunQueuedEvalOptions, type QueuedEvalProgress } from './distributed/queued-eval.js';
export { startEvalWorker, EVAL_WORKER_DEFAULTS, type EvalWorker, type EvalWorkerOptions, type EvalWorkerEvent } from './distributed/eval-worker.js';
export { runQueuedQuestions, RUN_QUEUED_QUESTIONS_DEFAULTS, type RunQueuedQuestionsOptions, type RunQueuedQuestionsResult, type QueuedQuestion, type QueuedAnswer } from './distributed/run-queued-questions.js';
export type { EvalJobAnswer, JobError } from './distributed/eval-job.js';
export { startWorkerHealth, WORKER_HEALTH_DEFAULTS, WORKER_HEALTH_PATHS, type WorkerHealth, type WorkerHealthOptions, type WorkerReadiness, type WorkerCheck, type ModelReadiness } from './distributed/worker-health.js';
export { QueueJobError, type QueueJobReason } from './errors/index.js';
