// The VQA model alone: its top-k answers with their softmax scores, as the upstream VLE pipeline reports them.
//
// Run:
//   npx tsc -p . && node dist/examples/candidates.js --tiny test/fixtures/images/fishing.jpg "What is in the man's hand?"
import { fromRoot, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image, question] = args.positionals;
if (!image || !question) usage('candidates.js [--tiny] IMAGE QUESTION');

const vision = await openVision(args);
try {
  // Several questions about one image: the image encoder runs once, then only the fusion graph per question.
  for (const text of [question, 'What color is the sky?']) {
    const { candidates, imageCached, timings } = await vision.candidates(fromRoot(image), text, { topK: 5 });
    console.log(`\n${text}  (image ${imageCached ? 'cached' : 'encoded'}, fusion ${timings.fusion?.toFixed(1)} ms)`);
    for (const { answer, score } of candidates) console.log(`  ${answer.padEnd(16)} ${'█'.repeat(Math.round(score * 40)).padEnd(40)} ${score.toFixed(3)}`);
  }
} finally {
  await vision.dispose();
}
