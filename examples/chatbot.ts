// A chatbot that holds a conversation about one image. Follow-up questions reuse the image's cached caption and
// embeddings, and earlier turns go to the LLM as context ("What color are their tongues?" after "How many dogs?").
//
// Run with the questions on the command line:
//   npx tsc -p . && node dist/examples/chatbot.js --tiny --llm none test/fixtures/images/truck.jpg "How many people are there?" "What color is the truck?"
// Or interactively (type questions, empty line or Ctrl-D to quit), or with questions piped in, one per line:
//   node dist/examples/chatbot.js --tiny test/fixtures/images/truck.jpg
//   printf 'How many people are there?\nWhat color is the truck?\n' | node dist/examples/chatbot.js --tiny --llm none test/fixtures/images/truck.jpg
import { createInterface } from 'node:readline';
import { createVqaChat, VqaChatSession } from '../src/index.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image, ...scripted] = args.positionals;
if (!image) usage('chatbot.js [--tiny] [--llm ...] IMAGE [QUESTION...]');

const vision = await openVision(args);
// The session keeps the history in memory; a server would keep it per conversation (or let the client send it).
const session = new VqaChatSession(createVqaChat({ vision, llm: openLlm(args) }), fromRoot(image));

async function turn(question: string): Promise<void> {
  process.stdout.write(`you: ${question}\nbot: `);
  let printed = '';
  for await (const chunk of session.stream(question)) {
    if (chunk.type === 'answer-delta') {
      process.stdout.write(chunk.text);
      printed += chunk.text;
    }
    if (chunk.type === 'result') {
      const { result } = chunk;
      // The deltas add up to the answer, unless the LLM's reply broke off midway: then the fallback replaces it.
      if (result.answer !== printed) process.stdout.write(`${printed ? ' → ' : ''}${result.answer}`);
      const cached = result.cached.caption && result.cached.imageEmbeddings ? 'image work cached' : 'image encoded';
      process.stdout.write(`   [${result.source}, ${cached}, ${Math.round(result.timings.total)} ms]\n`);
    }
  }
}

try {
  if (scripted.length > 0) {
    for (const question of scripted) await turn(question);
  } else {
    // Lines are read as a stream, not with question(): piped questions are buffered while an answer streams, and
    // the end of the input (Ctrl-D, the pipe's end, a closed stdin) ends the loop instead of throwing.
    const lines = createInterface({ input: process.stdin, terminal: process.stdin.isTTY });
    const prompt = (): void => void (process.stdin.isTTY && process.stdout.write('> '));
    prompt();
    for await (const line of lines) {
      const question = line.trim();
      if (!question) break;
      await turn(question);
      prompt();
    }
    lines.close();
  }
  console.log(`(${session.history.length} turns in the history)`);
} finally {
  await vision.dispose();
}
