// The embedded LLM on the full-size stand-in (models/make_tiny_gguf.py --full-size: Qwen2.5-1.5B-Instruct's real
// architecture and dimensions, random weights, Q4_0): prompt tokens/s, generated tokens/s (free text, and under
// the answer's JSON-schema grammar), and the end-to-end latency of a first and a follow-up question with the vision
// models (the full-size vision stand-ins when present) and the LLM together on this machine.
//
//   node dist/bench/local-llm.js [--iterations 3] [--threads N] [--reply-tokens 32] [--out bench/out/local-llm.json]
//
// Random weights fill every JSON string to its bound (600 characters), which no trained model does: the
// end-to-end runs cap the reply at --reply-tokens (a typical answer, `{"shortAnswer": "fishing pole", "answer":
// "The man is holding a fishing pole."}`, is about 25 Qwen tokens), so the LLM step costs what it would with the real
// model; the stand-in's cut reply then falls back (its words are random anyway), which changes no timing.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HumanMessage, SystemMessage } from '@langchain/core/messages';
import { createVqaChain } from '../chains/vqa-chain.js';
import { buildVqaPromptValues, vqaPromptV1 } from '../prompts/vqa-v1.js';
import { createLocalChatModel, type ChatLocalLlama } from '../src/llm/local/index.js';
import { packageRoot } from '../src/paths.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import type { VisionModels } from '../src/types.js';
import { median } from './stats.js';

export const LOCAL_LLM_STAND_IN = 'qwen2.5-1.5b-instruct-stand-in.gguf';

export interface LocalLlmBenchResult {
  model: string;
  threads: number;
  iterations: number;
  loadMs: number;
  /** Prompt evaluation of the VQA prompt from an empty sequence (no reused prefix). */
  prompt: { tokens: number; ms: number; tokensPerSecond: number };
  /** Generation after the prompt, free text and under the answer's JSON-schema grammar. */
  generation: { freeText: { tokens: number; tokensPerSecond: number }; jsonSchema: { tokens: number; tokensPerSecond: number } };
  /** Medians, ms: `total` end to end, `vision` (caption and candidates, concurrent), `llm` (the LLM step). */
  firstQuestion: { total: number; vision: number; llm: number };
  followUpQuestion: { total: number; vision: number; llm: number };
  vision: string;
  replyTokens: number;
  loadAverageAtStart: number[];
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

async function promptMessages(nonce: string) {
  const messages = await vqaPromptV1.formatMessages(
    buildVqaPromptValues({
      caption: 'a man in a hat sitting on a boat with a fishing pole',
      question: "What is in the man's hand?",
      candidates: [
        { answer: 'fishing pole', score: 0.62 },
        { answer: 'pole', score: 0.12 },
        { answer: 'rope', score: 0.07 },
        { answer: 'fish', score: 0.05 },
        { answer: 'stick', score: 0.03 },
      ],
    }),
  );
  // A different first line each time: the sequence can reuse no prefix, so the whole prompt is evaluated.
  return [new SystemMessage(`(${nonce}) ${String(messages[0]!.content)}`), ...messages.slice(1)];
}

async function timeReply(llm: ChatLocalLlama, nonce: string, schema: boolean): Promise<{ inputTokens: number; outputTokens: number; firstTokenMs: number; totalMs: number }> {
  const model = schema
    ? llm.withConfig({
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'vqa_answer', schema: { type: 'object', properties: { shortAnswer: { type: 'string', maxLength: 100 }, answer: { type: 'string', maxLength: 500 } } } },
        },
      } as never)
    : llm;
  const started = performance.now();
  const reply = await model.invoke(await promptMessages(nonce));
  const totalMs = performance.now() - started;
  const firstTokenMs = Number(reply.response_metadata.firstTokenMs ?? 0);
  return { inputTokens: reply.usage_metadata?.input_tokens ?? 0, outputTokens: reply.usage_metadata?.output_tokens ?? 0, firstTokenMs, totalMs };
}

/** Runs the benchmark; `visionDir` holds blip-base-standin and vle-base-standin (else the tiny test models). */
export async function benchLocalLlm(options: { modelPath: string; visionDir: string; iterations: number; threads: number; replyTokens: number }): Promise<LocalLlmBenchResult> {
  const loadAverageAtStart = loadavg().map((value) => round(value, 2));
  const started = performance.now();
  const llm = createLocalChatModel({ model: options.modelPath, threads: options.threads, maxTokens: 48, structuredMaxTokens: 48, timeoutMs: 600_000 });
  await llm.load();
  const loadMs = performance.now() - started;
  const promptRuns: { tokens: number; ms: number }[] = [];
  const free: { tokens: number; ms: number }[] = [];
  const json: { tokens: number; ms: number }[] = [];
  try {
    await timeReply(llm, 'warm-up', false);
    for (let index = 0; index < options.iterations; index += 1) {
      for (const schema of [false, true]) {
        const run = await timeReply(llm, `${index}-${schema}`, schema);
        process.stderr.write(`local-llm: ${schema ? 'json-schema' : 'free text'} reply ${index + 1}: ${run.inputTokens} prompt tokens, first token ${Math.round(run.firstTokenMs)} ms, ${run.outputTokens} tokens in ${Math.round(run.totalMs)} ms\n`);
        promptRuns.push({ tokens: run.inputTokens, ms: run.firstTokenMs });
        (schema ? json : free).push({ tokens: Math.max(0, run.outputTokens - 1), ms: run.totalMs - run.firstTokenMs });
      }
    }
  } finally {
    await llm.dispose();
  }
  const rate = (runs: { tokens: number; ms: number }[]) => round(median(runs.map((run) => (run.tokens / run.ms) * 1000)));

  const fullSize = existsSync(join(options.visionDir, 'blip-base-standin')) && existsSync(join(options.visionDir, 'vle-base-standin'));
  const root = packageRoot();
  const vision: VisionModels = fullSize
    ? await createVisionModels({ modelsDir: options.visionDir, captionModel: 'blip-base-standin', vqaModel: 'vle-base-standin', offline: true })
    : await createVisionModels({ modelsDir: join(root, 'test', 'fixtures', 'models'), captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  const chainLlm = createLocalChatModel({ model: options.modelPath, threads: options.threads, structuredMaxTokens: options.replyTokens, timeoutMs: 600_000 });
  const firsts: { total: number; vision: number; llm: number }[] = [];
  const followUps: { total: number; vision: number; llm: number }[] = [];
  try {
    await chainLlm.load();
    const chain = createVqaChain({ vision, llm: chainLlm, llmTimeoutMs: 600_000 });
    const images = ['fishing.jpg', 'truck.jpg', 'synthetic.png'].map((name) => readFileSync(join(root, 'test', 'fixtures', 'images', name)));
    for (let index = 0; index < options.iterations; index += 1) {
      // A new image each time (one pixel changed after the first round): nothing cached for the first question.
      const image = Buffer.from(images[index % images.length]!);
      if (index >= images.length) image[image.length - 1] = (image[image.length - 1]! + index) % 256;
      const first = await chain.invoke({ image, question: "What is in the man's hand?" });
      firsts.push({ total: first.timings.total, vision: first.timings.vision, llm: first.timings.llm });
      const followUp = await chain.invoke({ image, question: 'What color is his hat?', history: [{ question: "What is in the man's hand?", shortAnswer: 'fishing pole', answer: 'He is holding a fishing pole.' }] });
      followUps.push({ total: followUp.timings.total, vision: followUp.timings.vision, llm: followUp.timings.llm });
      process.stderr.write(`local-llm: question pair ${index + 1}: first ${Math.round(first.timings.total)} ms (llm ${Math.round(first.timings.llm)}), follow-up ${Math.round(followUp.timings.total)} ms (llm ${Math.round(followUp.timings.llm)})\n`);
    }
  } finally {
    await chainLlm.dispose();
    await vision.dispose();
  }
  const summary = (runs: { total: number; vision: number; llm: number }[]) => ({
    total: round(median(runs.map((run) => run.total))),
    vision: round(median(runs.map((run) => run.vision))),
    llm: round(median(runs.map((run) => run.llm))),
  });
  return {
    model: options.modelPath.split(/[\\/]/).at(-1)!,
    threads: options.threads,
    iterations: options.iterations,
    loadMs: round(loadMs),
    prompt: { tokens: median(promptRuns.map((run) => run.tokens)), ms: round(median(promptRuns.map((run) => run.ms))), tokensPerSecond: rate(promptRuns) },
    generation: { freeText: { tokens: median(free.map((run) => run.tokens)), tokensPerSecond: rate(free) }, jsonSchema: { tokens: median(json.map((run) => run.tokens)), tokensPerSecond: rate(json) } },
    firstQuestion: summary(firsts),
    followUpQuestion: summary(followUps),
    vision: fullSize ? 'full-size stand-ins (blip-base-standin, vle-base-standin)' : 'tiny test models',
    replyTokens: options.replyTokens,
    loadAverageAtStart,
  };
}

export function printLocalLlm(result: LocalLlmBenchResult): void {
  console.log(`\n## Embedded LLM: ${result.model} (${result.threads} threads, load ${result.loadMs} ms; load average at start ${result.loadAverageAtStart.join(' ')})`);
  console.log(`prompt:     ${result.prompt.tokens} tokens in ${result.prompt.ms} ms = ${result.prompt.tokensPerSecond} tokens/s`);
  console.log(`generation: ${result.generation.freeText.tokensPerSecond} tokens/s free text, ${result.generation.jsonSchema.tokensPerSecond} tokens/s under the JSON-schema grammar`);
  console.log(`with ${result.vision}, replies of ${result.replyTokens} tokens:`);
  console.log(`first question:     total ${result.firstQuestion.total} ms (vision ${result.firstQuestion.vision}, llm ${result.firstQuestion.llm})`);
  console.log(`follow-up question: total ${result.followUpQuestion.total} ms (vision ${result.followUpQuestion.vision}, llm ${result.followUpQuestion.llm})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = packageRoot();
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: join(root, 'models', 'full-size', LOCAL_LLM_STAND_IN) },
      vision: { type: 'string', default: join(root, 'models', 'full-size') },
      iterations: { type: 'string', default: '3' },
      threads: { type: 'string', default: String(availableParallelism()) },
      'reply-tokens': { type: 'string', default: '32' },
      out: { type: 'string', default: join(root, 'bench', 'out', 'local-llm.json') },
    },
  });
  if (!existsSync(values.model)) {
    console.error(`No model at ${values.model}: .venv/bin/python models/make_tiny_gguf.py --full-size writes the stand-in.`);
    process.exit(1);
  }
  const result = await benchLocalLlm({ modelPath: values.model, visionDir: values.vision, iterations: Number(values.iterations), threads: Number(values.threads), replyTokens: Number(values['reply-tokens']) });
  printLocalLlm(result);
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
}
