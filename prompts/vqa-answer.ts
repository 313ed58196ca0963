import { z } from 'zod';

/**
 * What the LLM must reply with. Sent as the `response_format` JSON schema to models that support structured
 * output, and used to validate every reply, structured or not.
 *
 * @example
 * ```ts
 * VqaAnswerSchema.parse({ shortAnswer: 'fishing pole', answer: 'The man is holding a fishing pole.' });
 * ```
 */
export const VqaAnswerSchema = z
  .object({
    shortAnswer: z.string().describe('The answer in a few words, e.g. "fishing pole" or "2".'),
    answer: z.string().describe('One fluent sentence that answers the question.'),
  })
  .describe('The answer to a question about a photo.');

export type VqaAnswer = z.infer<typeof VqaAnswerSchema>;

export type ParseAnswerResult =
  | { ok: true; value: VqaAnswer }
  | { ok: false; code: 'llm_empty' | 'llm_malformed'; message: string };
