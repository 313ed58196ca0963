// Ask one question about every image in a folder, two at a time, with a progress bar, writing one JSON line per
// image (a failed image gets an `error` line instead; the batch goes on).
//
// Run:
//   npx tsc -p . && node dist/examples/batch.js --tiny --llm none test/fixtures/images "What is in the picture?" test/output/batch.jsonl
import { createWriteStream } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import cliProgress from 'cli-progress';
import pLimit from 'p-limit';
import { createVqaChain } from '../chains/vqa-chain.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [folder, question, output] = args.positionals;
if (!folder || !question || !output) usage('batch.js [--tiny] [--llm ...] [--concurrency N] FOLDER QUESTION OUT.jsonl');

// 1. The images: anything with an image extension; the loader still checks the bytes themselves.
const names = (await readdir(fromRoot(folder))).filter((name) => /^\.(jpe?g|png|webp|gif|tiff?|avif|heic)$/i.test(extname(name))).sort();
await mkdir(dirname(fromRoot(output)), { recursive: true });
const out = createWriteStream(fromRoot(output));

const vision = await openVision(args);
const chain = createVqaChain({ vision, llm: openLlm(args) });
// 2. Two questions at a time keep two cores busy; more only queue in the worker pools.
const limit = pLimit(Number(args.values.concurrency ?? 2));
const bar = new cliProgress.SingleBar({ format: 'images [{bar}] {value}/{total} · {fallbacks} fallbacks · {errors} errors', stream: process.stderr }, cliProgress.Presets.shades_classic);
bar.start(names.length, 0, { fallbacks: 0, errors: 0 });
let fallbacks = 0;
let errors = 0;

try {
  await Promise.all(
    names.map((name) =>
      limit(async () => {
        const path = join(fromRoot(folder), name);
        try {
          const result = await chain.invoke({ image: path, question });
          if (result.source === 'vqa') fallbacks += 1;
          out.write(`${JSON.stringify({ image: name, question, answer: result.answer, shortAnswer: result.shortAnswer, caption: result.caption, candidates: result.candidates, source: result.source, ms: Math.round(result.timings.total) })}\n`);
        } catch (error) {
          errors += 1;
          out.write(`${JSON.stringify({ image: name, question, error: (error as Error).message })}\n`);
        }
        bar.increment(1, { fallbacks, errors });
      }),
    ),
  );
} finally {
  bar.stop();
  await new Promise((resolve) => out.end(resolve));
  await vision.dispose();
}
console.log(`wrote ${names.length} lines to ${output}`);
