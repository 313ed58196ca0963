import type { VqaResult } from '../../chains/types.js';

/**
 * The whole result as plain JSON (absent fields dropped), as the server's `vqa_llm` field carries it: caption,
 * candidates, source, fallbackReason, shortAnswer, timings, usage, models...
 */
export function resultMetadata(result: VqaResult): Record<string, unknown> {
  return JSON.parse(JSON.stringify(result)) as Record<string, unknown>;
}
