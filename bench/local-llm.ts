// The embedded LLM on the full-size stand-in (models/make_tiny_gguf.py --full-size: Qwen2.5-1.5B-Instruct's real
// architecture and dimensions, random weights, Q4_0): prompt tokens/s, generated tokens/s (free text, and under
// the answer's JSON-schema grammar), and the end-to-end latency of a first and a follow-up question with the vision
// models (the full-size vision stand-ins when present) and the LLM together on this machine.
//
//   node dist/bench/local-llm.js [--iterations 3] [--threads N] [--reply-tokens 32] [--out bench/out/local-llm.json]
//   node dist/bench/local-llm.js --users 2 [--rounds 2] [--arrival together|staggered] ...   (only the comparison below)
//
// With --users N, N users ask a first question each (different images, caches cleared each round): all at once
// (`together`, the default), or each when the one before it gets its vision results, i.e. while that one's LLM
// step runs (`staggered`: the case where the LLM and another question's vision graphs want the cores together); with
// the LLM drawing its threads from the vision models' core budget (`shared`, the default) and with
// `coreBudget: false` (`unshared`, what 0.1 did): the rounds alternate between the two, so that a change in the
// machine's load touches both alike. Reported per mode: the medians of the round's makespan, of a question's
// total, vision and LLM times, and the process's CPU time over wall time (threads that spin against each other
// burn CPU without progress).
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
import type { VqaResult } from '../chains/types.js';
import { createVqaChain } from '../chains/vqa-chain.js';
import { buildVqaPromptValues, vqaPromptV1 } from '../prompts/vqa-v1.js';
import { createLocalChatModel, type ChatLocalLlama } from '../src/llm/local/index.js';
import { sharedCoreBudget } from '../src/runtime/core-budget.js';
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

/** One way of sharing the cores, measured with `users` first questions at once. Medians over the rounds, ms. */
export interface UsersAtOnceMode {
  /** From the first question asked to the last answer, per round. */
  makespanMs: number;
  /** One question end to end, and its stages (medians over every question of every round). */
  questionMs: number;
  visionMs: number;
  llmMs: number;
  /** The process's CPU time over the round's wall time: at most the cores; more spent for the same work means spinning. */
  cpuOverWall: number;
  /** Most cores the shared budget had handed out at once (the LLM's included in `shared` mode only). */
  mostCoresHeld: number;
  /** Questions whose LLM step timed out or failed (the stand-in's cut, malformed replies are not counted). */
  fallbacks: number;
}

export interface UsersAtOnceResult {
  users: number;
  arrival: 'together' | 'staggered';
  rounds: number;
  threads: number;
  replyTokens: number;
  vision: string;
  shared: UsersAtOnceMode;
  unshared: UsersAtOnceMode;
  loadAverageAtStart: number[];
}

// Up to three users ask about different images (more would share one, and its image work).
const USER_IMAGES = ['fishing.jpg', 'truck.jpg', 'synthetic.png'];

/**
 * `users` users ask a first question each at once, with the LLM on the vision models' core budget and off it, in
 * alternating rounds (see the header).
 */
export async function benchUsersAtOnce(options: { modelPath: string; visionDir: string; users: number; rounds: number; threads: number; replyTokens: number; arrival?: 'together' | 'staggered' }): Promise<UsersAtOnceResult> {
  const arrival = options.arrival ?? 'together';
  const loadAverageAtStart = loadavg().map((value) => round(value, 2));
  const root = packageRoot();
  const fullSize = existsSync(join(options.visionDir, 'blip-base-standin')) && existsSync(join(options.visionDir, 'vle-base-standin'));
  // No `cores`: the vision models draw from the process's budget, as the CLI's and the server's do.
  const vision = fullSize
    ? await createVisionModels({ modelsDir: options.visionDir, captionModel: 'blip-base-standin', vqaModel: 'vle-base-standin', offline: true })
    : await createVisionModels({ modelsDir: join(root, 'test', 'fixtures', 'models'), captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  const common = { model: options.modelPath, threads: options.threads, structuredMaxTokens: options.replyTokens, timeoutMs: 600_000, contextSize: 2048, sequences: Math.max(2, options.users) };
  const llms = { shared: createLocalChatModel(common), unshared: createLocalChatModel({ ...common, coreBudget: false }) };
  const budget = sharedCoreBudget();
  let held = 0;
  let mostHeld = 0;
  const stopObserving = budget.observe((event) => {
    held = budget.cores - event.available;
    mostHeld = Math.max(mostHeld, held);
  });
  const runs: Record<'shared' | 'unshared', { makespan: number; cpuOverWall: number; mostHeld: number; questions: { total: number; vision: number; llm: number }[]; fallbacks: number }[]> = { shared: [], unshared: [] };
  try {
    await Promise.all([llms.shared.load(), llms.unshared.load()]);
    const images = USER_IMAGES.map((name) => readFileSync(join(root, 'test', 'fixtures', 'images', name)));
    const question = "What is in the man's hand?";
    for (const mode of ['shared', 'unshared'] as const) {
      // Warm-up: first runs of each graph and the LLM's first evaluation are slower than the rest.
      const chain = createVqaChain({ vision, llm: llms[mode], llmTimeoutMs: 600_000 });
      vision.clearCache();
      await chain.invoke({ image: images[0]!, question });
    }
    for (let roundIndex = 0; roundIndex < options.rounds; roundIndex += 1) {
      for (const mode of roundIndex % 2 === 0 ? (['shared', 'unshared'] as const) : (['unshared', 'shared'] as const)) {
        const chain = createVqaChain({ vision, llm: llms[mode], llmTimeoutMs: 600_000 });
        vision.clearCache();
        mostHeld = 0;
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        const ask = async (user: number): Promise<VqaResult[]> => {
          const input = { image: images[(user + roundIndex) % images.length]!, question };
          if (arrival === 'together' || user === options.users - 1) return [await chain.invoke(input)];
          // The next user asks as soon as this one's vision results are in, while its LLM step runs.
          let next: Promise<VqaResult[]> | undefined;
          let result: VqaResult | undefined;
          for await (const chunk of await chain.stream(input)) {
            if (chunk.type === 'vision') next = ask(user + 1);
            if (chunk.type === 'result') result = chunk.result;
          }
          return [result!, ...(await next!)];
        };
        const results =
          arrival === 'together'
            ? (await Promise.all(Array.from({ length: options.users }, (_, user) => ask(user)))).flat()
            : await ask(0);
        const makespan = performance.now() - started;
        const cpu = process.cpuUsage(cpuBefore);
        const run = {
          makespan,
          cpuOverWall: (cpu.user + cpu.system) / 1000 / makespan,
          mostHeld,
          questions: results.map((result) => ({ total: result.timings.total, vision: result.timings.vision, llm: result.timings.llm })),
          // The stand-in's cut replies fall back as malformed by design; a timeout or an error would skew the LLM figure.
          fallbacks: results.filter((result) => ['llm_timeout', 'llm_error', 'llm_aborted'].includes(result.fallbackReason?.code ?? '')).length,
        };
        runs[mode].push(run);
        process.stderr.write(
          `local-llm: ${options.users} users (${arrival}), ${mode}, round ${roundIndex + 1}: makespan ${Math.round(makespan)} ms, questions ${run.questions.map((entry) => `${Math.round(entry.total)} (vision ${Math.round(entry.vision)}, llm ${Math.round(entry.llm)})`).join(', ')}, cpu/wall ${round(run.cpuOverWall, 2)}, most cores held ${mostHeld}\n`,
        );
      }
    }
  } finally {
    stopObserving();
    await Promise.all([llms.shared.dispose(), llms.unshared.dispose()]);
    await vision.dispose();
  }
  const summarise = (mode: 'shared' | 'unshared'): UsersAtOnceMode => {
    const questions = runs[mode].flatMap((run) => run.questions);
    return {
      makespanMs: round(median(runs[mode].map((run) => run.makespan))),
      questionMs: round(median(questions.map((entry) => entry.total))),
      visionMs: round(median(questions.map((entry) => entry.vision))),
      llmMs: round(median(questions.map((entry) => entry.llm))),
      cpuOverWall: round(median(runs[mode].map((run) => run.cpuOverWall)), 2),
      mostCoresHeld: Math.max(...runs[mode].map((run) => run.mostHeld)),
      fallbacks: runs[mode].reduce((sum, run) => sum + run.fallbacks, 0),
    };
  };
  return {
    users: options.users,
    arrival,
    rounds: options.rounds,
    threads: options.threads,
    replyTokens: options.replyTokens,
    vision: fullSize ? 'full-size stand-ins (blip-base-standin, vle-base-standin)' : 'tiny test models',
    shared: summarise('shared'),
    unshared: summarise('unshared'),
    loadAverageAtStart,
  };
}

export function printUsersAtOnce(result: UsersAtOnceResult): void {
  console.log(`\n## ${result.users} users, ${result.arrival === 'together' ? 'all at once' : 'each asking while the one before waits for its LLM'}, first questions (${result.vision}; LLM ${result.threads} threads, ${result.replyTokens}-token replies; medians of ${result.rounds} rounds; load average at start ${result.loadAverageAtStart.join(' ')})`);
  console.log('| LLM threads | makespan ms | question ms | vision ms | LLM ms | CPU / wall | most budget cores held | fallbacks |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const mode of ['shared', 'unshared'] as const) {
    const entry = result[mode];
    console.log(`| ${mode === 'shared' ? 'from the core budget' : 'beside it (coreBudget: false)'} | ${entry.makespanMs} | ${entry.questionMs} | ${entry.visionMs} | ${entry.llmMs} | ${entry.cpuOverWall} | ${entry.mostCoresHeld} | ${entry.fallbacks} |`);
  }
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
      users: { type: 'string' },
      rounds: { type: 'string', default: '2' },
      arrival: { type: 'string', default: 'together' },
      out: { type: 'string', default: join(root, 'bench', 'out', 'local-llm.json') },
    },
  });
  if (!existsSync(values.model)) {
    console.error(`No model at ${values.model}: .venv/bin/python models/make_tiny_gguf.py --full-size writes the stand-in.`);
    process.exit(1);
  }
  if (values.users !== undefined) {
    if (values.arrival !== 'together' && values.arrival !== 'staggered') throw new Error(`--arrival must be together or staggered, got ${values.arrival}.`);
    const usersResult = await benchUsersAtOnce({ modelPath: values.model, visionDir: values.vision, users: Number(values.users), rounds: Number(values.rounds), threads: Number(values.threads), replyTokens: Number(values['reply-tokens']), arrival: values.arrival });
    printUsersAtOnce(usersResult);
    const out = values.out.replace(/\.json$/, `-users-${values.arrival}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(usersResult, null, 2)}\n`);
    process.exit(0);
  }
  const result = await benchLocalLlm({ modelPath: values.model, visionDir: values.vision, iterations: Number(values.iterations), threads: Number(values.threads), replyTokens: Number(values['reply-tokens']) });
  printLocalLlm(result);
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
}
