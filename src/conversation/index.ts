// What every caller of the chain reads from a conversation the same way (the server and the in-process adapters):
// one image, one question and the earlier turns; and which JSON answers the result can fill.
export { reduceConversation, type ConversationImage, type ConversationMessage, type ConversationRole, type ConversationShape, type ReducedConversation } from './reduce-conversation.js';
export { formatResultJson, readResultSchema, type ResultField, type ResultJsonFormat, type ResultSchemaOptions } from './result-json.js';
export { streamCorrection } from './stream-correction.js';
export { checkTurnText, validateHistory, type HistoryLimits } from './validate-history.js';
