// Caption an image with the BLIP captioner.
//
// Run (tiny test models, no download):
//   npx tsc -p . && node dist/examples/caption.js --tiny test/fixtures/images/fishing.jpg
// With the real models (fetched once with `vqa-llm models fetch`):
//   node dist/examples/caption.js test/fixtures/images/fishing.jpg
import { fromRoot, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image] = args.positionals;
if (!image) usage('caption.js [--tiny] IMAGE');

// 1. Load both vision models; each runs in its own worker thread.
const vision = await openVision(args);
try {
  // 2. Caption. `prefix` steers BLIP ("a picture of ...") and is removed from the result; beams trade speed for quality.
  const greedy = await vision.caption(fromRoot(image));
  const beams = await vision.caption(fromRoot(image), { numBeams: 3, prefix: 'a picture of' });
  console.log(`greedy:           ${greedy.caption}`);
  console.log(`3 beams + prefix: ${beams.caption}`);
  // 3. The second call found the image embeddings in the per-image cache: only the decoder ran again.
  console.log('timings (ms):', beams.timings);
} finally {
  await vision.dispose();
}
