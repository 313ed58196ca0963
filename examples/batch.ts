// Ask one question about every image in a folder, two at a time, with a progress bar, writing one JSON line per
// image (a failed image gets an `error` line instead; the batch goes on).
//
// Run:
//   npx tsc -p . && node dist/examples/batch.js --tiny --llm none test/fixtures/images "What is in the picture?" test/output/batch.jsonl
// Or on workers (any number of machines; the images travel through Redis, no shared folder needed):
//   vqa-llm worker --queue redis://127.0.0.1:6379/0 --models test/fixtures/models --caption-model tiny-blip --vqa-model tiny-vle --llm none
//   node dist/examples/batch.js --queue redis://127.0.0.1:6379/0 test/fixtures/images "What is in the picture?" test/output/batch.jsonl
import { createWriteStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import cliProgress from 'cli-progress';
import pLimit from 'p-limit';
import { createVqaChain } from '../chains/vqa-chain.js';
import { runQueuedQuestions, type EvalJobAnswer } from '../src/index.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [folder, question, output] = args.positionals;
if (!folder || !question || !output) usage('batch.js [--tiny] [--llm ...] [--concurrency N] [--queue redis://...] FOLDER QUESTION OUT.jsonl');

// 1. The images: anything with an image extension; the loader still checks the bytes themselves.
const names = (await readdir(fromRoot(folder))).filter((name) => /^\.(jpe?g|png|webp|gif|tiff?|avif|heic)$/i.test(extname(name))).sort();
await mkdir(dirname(fromRoot(output)), { recursive: true });
const out = createWriteStream(fromRoot(output));

const bar = new cliProgress.SingleBar({ format: 'images [{bar}] {value}/{total} · {fallbacks} fallbacks · {errors} errors', stream: process.stderr }, cliProgress.Presets.shades_classic);
bar.start(names.length, 0, { fallbacks: 0, errors: 0 });
let fallbacks = 0;
let errors = 0;

// 2. One line per image, whoever answered it.
function record(name: string, outcome: { answer?: EvalJobAnswer; error?: { message: string } }): void {
  if (outcome.answer) {
    const result = outcome.answer;
    if (result.source === 'vqa') fallbacks += 1;
    out.write(`${JSON.stringify({ image: name, question, answer: result.answer, shortAnswer: result.shortAnswer, caption: result.caption, candidates: result.candidates, source: result.source, ms: Math.round(result.timings.total) })}\n`);
  } else {
    errors += 1;
    out.write(`${JSON.stringify({ image: name, question, error: outcome.error?.message })}\n`);
  }
  bar.increment(1, { fallbacks, errors });
}

let interrupted = false;
try {
  if (args.values.queue) {
    // 3a. Through the queue: no models here; each image's bytes go to Redis once and a worker answers.
    // Ctrl-C stops the batch and removes its jobs and images from Redis (a crash leaves them to their TTLs).
    const stop = new AbortController();
    const onSigint = (): void => stop.abort(new Error('SIGINT'));
    process.once('SIGINT', onSigint);
    try {
      await runQueuedQuestions({
        queue: args.values.queue,
        source: '--queue',
        items: names.map((name) => ({ id: name, image: join(fromRoot(folder), name), question })),
        onResult: ({ id, answer, error }) => record(String(id), { answer, error }),
        signal: stop.signal,
      });
    } catch (error) {
      if (!stop.signal.aborted) throw error;
      interrupted = true;
    } finally {
      process.off('SIGINT', onSigint);
    }
  } else {
    // 3b. Here: two questions at a time keep two cores busy; more only queue in the worker pools.
    const vision = await openVision(args);
    try {
      const chain = createVqaChain({ vision, llm: openLlm(args) });
      const limit = pLimit(Number(args.values.concurrency ?? 2));
      await Promise.all(
        names.map((name) =>
          limit(async () => {
            try {
              record(name, { answer: await chain.invoke({ image: join(fromRoot(folder), name), question }) });
            } catch (error) {
              record(name, { error: error as Error });
            }
          }),
        ),
      );
    } finally {
      await vision.dispose();
    }
  }
} finally {
  bar.stop();
  await new Promise((resolve) => out.end(resolve));
}
if (interrupted) {
  console.error(`stopped: the batch's jobs were removed from the queue; ${output} holds the answers so far`);
  process.exitCode = 130;
} else console.log(`wrote ${names.length} lines to ${output}`);
