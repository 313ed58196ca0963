export {
  CHAT_MODEL_DEFAULTS,
  createChatModel,
  resolveLlmProvider,
  type ChatModelOptions,
  type LlmProvider,
} from './create-chat-model.js';
export { CIRCUIT_BREAKER_DEFAULTS, createCircuitBreaker, type CallOutcome, type CircuitBreaker, type CircuitBreakerOptions, type CircuitPermit, type CircuitState } from './circuit-breaker.js';
export { isRetryableLlmError, RETRY_BACKOFF_DEFAULTS, retryAfterMs, retryDelayMs, type RetryBackoff } from './retry-policy.js';
export { ChatLocalLlama, createLocalChatModel, defaultLocalModelUrl, LOCAL_CHAT_MODEL_DEFAULTS, locateLocalModel, fetchLocalModel, type FetchLocalModelOptions, type LocalChatModelCallOptions, type LocalChatModelOptions, type LocalModelLocation, type LocateLocalModelOptions } from './local/index.js';
