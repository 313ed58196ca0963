import { tool, type DynamicStructuredTool } from '@langchain/core/tools';
import { z } from 'zod';
import type { VqaChainOptions, VqaResult } from '../../chains/types.js';
import { createVqaChain, VqaChain } from '../../chains/vqa-chain.js';
import { loadImage } from '../image/load-image.js';
import type { ImageLimits } from '../types.js';

export interface VisualQuestionAnsweringToolOptions {
  /** The chain that answers, or the options to build one (`vision`, `llm`, ...). */
  chain: VqaChain | VqaChainOptions;
  /** The name the agent calls the tool by. Default `visual_question_answering`. */
  name?: string;
  /** What the agent reads to decide when to call it. */
  description?: string;
  /** Accept local file paths as `image`. Default true: an agent about the user's own photos needs them. */
  allowFiles?: boolean;
  /**
   * Accept http(s) URLs as `image`. Default false: the URL comes from a model that may have read it in untrusted
   * text, and downloading it would let that text make this machine connect anywhere (SSRF).
   */
  allowUrls?: boolean;
  /** Limits on the image; default the loader's. */
  imageLimits?: ImageLimits;
}

/** The tool's input, checked before any model work; a bad field raises an error that names it. */
export const visualQuestionAnsweringSchema = z.object({
  image: z.string().min(1).describe('The image: a local file path or a data URL (data:image/jpeg;base64,...).'),
  question: z.string().min(1).max(1000).describe('One question about the image, in English, e.g. "How many dogs are there?".'),
});

export type VisualQuestionAnsweringInput = z.infer<typeof visualQuestionAnsweringSchema>;

const DEFAULT_DESCRIPTION =
  'Answers one question about an image (a photo): what is in it, how many, which color, what someone is doing. ' +
  'Local vision models caption the image and propose scored answers; an LLM picks the most reasonable one. ' +
  'Returns JSON with the answer sentence, a short answer, the caption and where the answer came from.';

/**
 * A LangChain tool that answers a question about an image with the VQA+LLM chain, for agents that combine seeing
 * with other tools. The content the agent reads is a compact JSON string; the full {@link VqaResult} is the
 * tool message's artifact. Questions about the same image reuse its cached caption and embeddings.
 *
 * @example
 * ```ts
 * const vision = await createVisionModels({ captionModel: 'blip-image-captioning-base', vqaModel: 'vle-base-for-vqa' });
 * const vqaTool = createVisualQuestionAnsweringTool({ chain: { vision, llm: createChatModel() } });
 * const agent = createAgent({ model: new ChatOpenAI({ model: 'gpt-4o-mini' }), tools: [vqaTool, calculator] });
 * await agent.invoke({ messages: [{ role: 'user', content: 'How many dogs are in photos/dogs.jpg, times 3?' }] });
 *
 * // Or call it directly:
 * const reply = await vqaTool.invoke({ image: 'photos/dogs.jpg', question: 'How many dogs are there?' });
 * ```
 */
export function createVisualQuestionAnsweringTool(options: VisualQuestionAnsweringToolOptions): DynamicStructuredTool<typeof visualQuestionAnsweringSchema> {
  const chain = options.chain instanceof VqaChain ? options.chain : createVqaChain(options.chain);
  const allowFiles = options.allowFiles ?? true;
  const allowUrls = options.allowUrls ?? false;
  return tool(
    async (input: VisualQuestionAnsweringInput, config): Promise<[string, VqaResult]> => {
      // Loaded here, not by the chain, so that this tool's file and URL policy applies whatever the vision side allows.
      const image = await loadImage(input.image, { ...options.imageLimits, allowFiles, allowUrls, signal: config?.signal });
      const result = await chain.invoke({ image, question: input.question }, config);
      const content = JSON.stringify({
        answer: result.answer,
        shortAnswer: result.shortAnswer,
        caption: result.caption,
        topCandidates: result.candidates.slice(0, 3).map((candidate) => `${candidate.answer} (${candidate.score.toFixed(2)})`),
        source: result.source,
      });
      return [content, result];
    },
    {
      name: options.name ?? 'visual_question_answering',
      description: options.description ?? DEFAULT_DESCRIPTION,
      schema: visualQuestionAnsweringSchema,
      responseFormat: 'content_and_artifact',
    },
  ) as DynamicStructuredTool<typeof visualQuestionAnsweringSchema>;
}

/** The same function under the name the design brief uses. */
export const createVisionQuestionAnsweringTool = createVisualQuestionAnsweringTool;
