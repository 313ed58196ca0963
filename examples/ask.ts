// The full VQA+LLM chain: caption and candidates computed concurrently, then a text-only LLM picks the answer and
// says it as one sentence, streamed as it arrives. Without an LLM (--llm none) the answer is the top candidate.
//
// Run (no LLM):
//   npx tsc -p . && node dist/examples/ask.js --tiny --llm none test/fixtures/images/fishing.jpg "What is in the man's hand?"
// With any OpenAI-compatible server (llama.cpp, Ollama, vLLM, OpenAI):
//   OPENAI_BASE_URL=http://127.0.0.1:11434/v1 VQA_LLM_MODEL=qwen2.5:7b node dist/examples/ask.js IMAGE QUESTION
import { createVqaChain } from '../chains/vqa-chain.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image, question] = args.positionals;
if (!image || !question) usage('ask.js [--tiny] [--llm none|openai|auto] IMAGE QUESTION');

const vision = await openVision(args);
try {
  const chain = createVqaChain({ vision, llm: openLlm(args), topK: 5 });
  // stream(): first the vision chunk (caption + candidates), then the sentence in pieces, then the full result.
  let printed = '';
  for await (const chunk of await chain.stream({ image: fromRoot(image), question })) {
    if (chunk.type === 'vision') {
      console.log(`caption:    ${chunk.caption}`);
      console.log(`candidates: ${chunk.candidates.map((candidate) => `${candidate.answer} (${candidate.score.toFixed(2)})`).join(', ')}`);
      process.stdout.write('answer:     ');
    } else if (chunk.type === 'answer-delta') {
      printed += chunk.text;
      process.stdout.write(chunk.text);
    } else {
      const { result } = chunk;
      // Deltas from a reply that broke off are provisional: the result's answer then replaces them.
      if (result.answer !== printed) process.stdout.write(`${printed ? ' → ' : ''}${result.answer}`);
      if (result.source === 'vqa') process.stdout.write(`  [VQA answer: ${result.fallbackReason?.code}]`);
      console.log(`\ntimings:    ${Math.round(result.timings.total)} ms total, ${Math.round(result.timings.llm)} ms LLM`);
    }
  }
} finally {
  await vision.dispose();
}
