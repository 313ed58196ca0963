export { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';
export { GraphMismatchError, type GraphMismatchReason } from './graph-mismatch-error.js';
export { InferenceError, type InferenceReason } from './inference-error.js';
export { InvalidImageError, type InvalidImageReason } from './invalid-image-error.js';
export { InvalidOptionError, type InvalidOptionReason } from './invalid-option-error.js';
export { InvalidQuestionError, type InvalidQuestionReason } from './invalid-question-error.js';
export { ModelDownloadError, type ModelDownloadReason } from './model-download-error.js';
export { ModelIntegrityError, type ModelIntegrityReason } from './model-integrity-error.js';
export { ModelNotFoundError, type ModelNotFoundReason } from './model-not-found-error.js';
