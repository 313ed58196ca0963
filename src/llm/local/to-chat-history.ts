import type { BaseMessage } from '@langchain/core/messages';
import type { ChatHistoryItem } from 'node-llama-cpp';
import { InvalidOptionError } from '../../errors/index.js';

function textOf(message: BaseMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  // Multimodal parts: a text-only model reads the text parts; an image part has nothing it could read.
  return content
    .map((part) => (typeof part === 'string' ? part : part.type === 'text' && typeof part.text === 'string' ? part.text : ''))
    .join('');
}

/**
 * LangChain messages as node-llama-cpp's chat history, ending with an empty model turn to be generated. System
 * messages are merged into one at the start (chat templates take one); consecutive user messages are joined.
 *
 * @throws {InvalidOptionError} for an empty conversation or a message role a local chat template cannot render
 * (tool calls and tool results: this model does not call tools).
 *
 * @example
 * ```ts
 * toChatHistory([new SystemMessage('Be brief.'), new HumanMessage('Hi')]);
 * // [{ type: 'system', text: 'Be brief.' }, { type: 'user', text: 'Hi' }, { type: 'model', response: [] }]
 * ```
 */
export function toChatHistory(messages: readonly BaseMessage[]): ChatHistoryItem[] {
  const system: string[] = [];
  const turns: ChatHistoryItem[] = [];
  for (const message of messages) {
    const type = message.getType();
    const text = textOf(message);
    const last = turns.at(-1);
    if (type === 'system' || type === 'developer') {
      system.push(text);
    } else if (type === 'human' || type === 'generic') {
      if (last?.type === 'user') last.text = `${last.text}\n\n${text}`;
      else turns.push({ type: 'user', text });
    } else if (type === 'ai') {
      if (last?.type === 'model') last.response.push(text);
      else turns.push({ type: 'model', response: [text] });
    } else {
      throw new InvalidOptionError('invalid_value', `The local model cannot take a '${type}' message: it answers conversations of system, user and assistant messages.`);
    }
  }
  if (turns.length === 0) throw new InvalidOptionError('invalid_value', 'The local model needs at least one user message.');
  const history: ChatHistoryItem[] = system.length > 0 ? [{ type: 'system', text: system.join('\n\n') }, ...turns] : turns;
  // A conversation that ends with the assistant's words is continued from them; otherwise a new reply starts.
  if (history.at(-1)!.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}
