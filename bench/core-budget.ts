// Latency for one user and throughput for several, under a chosen way of sharing the cores between the models:
//   node dist/bench/core-budget.js --scheduling budget|split [--threads N] [--spin] [--users 4] [--iterations 3]
// Prints one JSON line (RESULT {...}) with medians in ms; `npm run bench` runs it for both schedulings.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { median } from './stats.js';

export interface CoreBudgetBenchResult {
  scheduling: 'budget' | 'split';
  threads?: number;
  spin: boolean;
  loadMs: number;
  /** One user, first question on an image: when the candidates were ready, and when both caption and candidates were. */
  firstQuestion: { candidatesMs: number; bothMs: number };
  /** One user, a second question on the same image. */
  followUpMs: number;
  /** `users` users at once, each a first question then a follow-up on an image of their own. */
  concurrent: { users: number; makespanMs: number; questionsPerMinute: number; meanUserMs: number };
  answers: string[];
}

const root = packageRoot();
const IMAGES = ['dogs.jpg', 'birds.jpg', 'door.jpg', 'fishing.jpg', 'truck.jpg'];

export async function benchCoreBudget(options: {
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  scheduling: 'budget' | 'split';
  threads?: number;
  spin?: boolean;
  users?: number;
  iterations?: number;
}): Promise<CoreBudgetBenchResult> {
  const users = options.users ?? 4;
  const iterations = options.iterations ?? 3;
  const images = IMAGES.map((name) => readFileSync(join(root, 'test', 'fixtures', 'eval', name)));
  const loadStarted = performance.now();
  const vision = await createVisionModels({
    modelsDir: options.modelsDir,
    captionModel: options.captionModel,
    vqaModel: options.vqaModel,
    offline: true,
    scheduling: options.scheduling,
    threads: options.threads,
    sessionOptions: { allowSpinning: options.spin ?? false },
  });
  const loadMs = performance.now() - loadStarted;
  const answers: string[] = [];
  const ask = async (image: Buffer, question: string): Promise<{ candidatesMs: number; bothMs: number }> => {
    const started = performance.now();
    let candidatesMs = 0;
    const [caption, candidates] = await Promise.all([
      vision.caption(image),
      vision.candidates(image, question).then((result) => {
        candidatesMs = performance.now() - started;
        return result;
      }),
    ]);
    answers.push(`${caption.caption} | ${candidates.candidates[0]!.answer}`);
    return { candidatesMs, bothMs: performance.now() - started };
  };
  try {
    await ask(images[0]!, 'What is in the picture?');
    const first: { candidatesMs: number; bothMs: number }[] = [];
    const followUp: number[] = [];
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      first.push(await ask(images[0]!, 'What is in the picture?'));
      followUp.push((await ask(images[0]!, 'How many are there?')).bothMs);
    }
    const makespans: number[] = [];
    const userTimes: number[] = [];
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: users }, async (_, user) => {
          const image = images[(user + 1) % images.length]!;
          await ask(image, 'What is in the picture?');
          await ask(image, 'How many are there?');
          userTimes.push(performance.now() - started);
        }),
      );
      makespans.push(performance.now() - started);
    }
    const makespanMs = median(makespans);
    return {
      scheduling: options.scheduling,
      threads: options.threads,
      spin: options.spin ?? false,
      loadMs: Math.round(loadMs),
      firstQuestion: { candidatesMs: Math.round(median(first.map((sample) => sample.candidatesMs))), bothMs: Math.round(median(first.map((sample) => sample.bothMs))) },
      followUpMs: Math.round(median(followUp)),
      concurrent: { users, makespanMs: Math.round(makespanMs), questionsPerMinute: Math.round(((2 * users) / (makespanMs / 60000)) * 10) / 10, meanUserMs: Math.round(userTimes.reduce((a, b) => a + b, 0) / userTimes.length) },
      answers: [...new Set(answers)].sort(),
    };
  } finally {
    await vision.dispose();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  const { values } = parseArgs({
    options: {
      scheduling: { type: 'string', default: 'budget' },
      threads: { type: 'string' },
      spin: { type: 'boolean', default: false },
      users: { type: 'string', default: '4' },
      iterations: { type: 'string', default: '3' },
      tiny: { type: 'boolean', default: false },
    },
  });
  const modelsDir = values.tiny ? join(root, 'test', 'fixtures', 'models') : join(root, 'models', 'full-size');
  const result = await benchCoreBudget({
    modelsDir,
    captionModel: values.tiny ? 'tiny-blip' : 'blip-base-standin',
    vqaModel: values.tiny ? 'tiny-vle' : 'vle-base-standin',
    scheduling: values.scheduling as 'budget' | 'split',
    threads: values.threads ? Number(values.threads) : undefined,
    spin: values.spin,
    users: Number(values.users),
    iterations: Number(values.iterations),
  });
  console.log(`RESULT ${JSON.stringify(result)}`);
}
