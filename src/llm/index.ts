export {
  CHAT_MODEL_DEFAULTS,
  createChatModel,
  resolveLlmProvider,
  type ChatModelOptions,
  type LlmProvider,
} from './create-chat-model.js';
