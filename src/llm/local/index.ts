export { ChatLocalLlama, createLocalChatModel, LOCAL_CHAT_MODEL_DEFAULTS, type LocalChatModelCallOptions, type LocalChatModelOptions } from './chat-local-llama.js';
export { defaultLocalModelUrl, locateLocalModel, type LocalModelLocation, type LocateLocalModelOptions } from './local-model-path.js';
export { fetchLocalModel, type FetchLocalModelOptions } from './fetch-local-model.js';
