// The VQA+LLM chain's orchestration overhead: everything except model inference and the LLM call (image read and
// decode, hashing, worker messaging, LangChain composition, prompt formatting, answer parsing), as a share of
// end-to-end time. The LLM is a loopback OpenAI-compatible endpoint that answers at once, so its call time is
// measured by the chain and subtracted, not simulated.
import { readFileSync } from 'node:fs';
import { createVqaChain } from '../chains/vqa-chain.js';
import { createChatModel } from '../src/llm/index.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import type { StageTimings } from '../src/types.js';
import { startInstantLlm } from './instant-llm.js';
import { median } from './stats.js';

export interface ChainBenchResult {
  name: string;
  iterations: number;
  /** Medians in ms. */
  firstQuestion: ChainBreakdown;
  followUpQuestion: ChainBreakdown;
}

export interface ChainBreakdown {
  total: number;
  /** The longer of the two concurrent vision paths: preprocess + encoder (+ decoder | fusion), inside the workers. */
  inference: number;
  llm: number;
  /** total - inference - llm. */
  orchestration: number;
  /** Of which: reading, hashing and decoding the image on the main thread's side. */
  imageLoad: number;
  orchestrationShare: number;
}

const sum = (timings: StageTimings, keys: string[]): number => keys.reduce((total, key) => total + (timings[key] ?? 0), 0);

function summarize(samples: ChainBreakdown[]): ChainBreakdown {
  const pick = (key: keyof ChainBreakdown): number => Math.round(median(samples.map((sample) => sample[key])) * 1000) / 1000;
  return {
    total: pick('total'),
    inference: pick('inference'),
    llm: pick('llm'),
    orchestration: pick('orchestration'),
    imageLoad: pick('imageLoad'),
    orchestrationShare: pick('orchestrationShare'),
  };
}

export async function benchChain(name: string, modelsDir: string, captionModel: string, vqaModel: string, imagePath: string, iterations: number): Promise<ChainBenchResult> {
  const { server, baseUrl } = await startInstantLlm({ shortAnswer: 'two', answer: 'There are two dogs in the picture.' });
  const vision = await createVisionModels({ modelsDir, captionModel, vqaModel, offline: true });
  const chain = createVqaChain({ vision, llm: createChatModel({ provider: 'openai', baseUrl, apiKey: 'bench', model: 'instant' }) });
  const bytes = readFileSync(imagePath);
  const first: ChainBreakdown[] = [];
  const followUp: ChainBreakdown[] = [];
  const breakdown = (result: Awaited<ReturnType<typeof chain.invoke>>): ChainBreakdown => {
    const caption = result.timings.stages.caption;
    const candidates = result.timings.stages.candidates;
    const inference = Math.max(sum(caption, ['preprocess', 'vision', 'crossAttention', 'decoder']), sum(candidates, ['preprocess', 'vision', 'fusion']));
    const orchestration = result.timings.total - inference - result.timings.llm;
    if (result.source !== 'llm') throw new Error(`the loopback LLM was not used: ${JSON.stringify(result.fallbackReason)}`);
    return {
      total: result.timings.total,
      inference,
      llm: result.timings.llm,
      orchestration,
      imageLoad: result.timings.prepare,
      orchestrationShare: orchestration / result.timings.total,
    };
  };
  try {
    await chain.invoke({ image: bytes, question: 'How many dogs are there?' });
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      first.push(breakdown(await chain.invoke({ image: bytes, question: 'How many dogs are there?' })));
      followUp.push(breakdown(await chain.invoke({ image: bytes, question: 'What color are their tongues?' })));
    }
  } finally {
    await vision.dispose();
    server.close();
  }
  return { name, iterations, firstQuestion: summarize(first), followUpQuestion: summarize(followUp) };
}
