// The `usage` of an answer in each API's shape. The counts are the LLM's, as it reported them; the vision models
// take no tokens from the client's point of view. Without a report (no LLM call, or an endpoint that sends no
// usage) every count is 0: clients read numbers there, and `vqa_llm.usage` being absent says which case it was.
import type { VqaResult } from '../../chains/types.js';

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function chatUsage(result: VqaResult): ChatUsage {
  const usage = result.usage;
  return { prompt_tokens: usage?.inputTokens ?? 0, completion_tokens: usage?.outputTokens ?? 0, total_tokens: usage?.totalTokens ?? 0 };
}

export function responsesUsage(result: VqaResult): ResponsesUsage {
  const usage = result.usage;
  return {
    input_tokens: usage?.inputTokens ?? 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage?.outputTokens ?? 0,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage?.totalTokens ?? 0,
  };
}
