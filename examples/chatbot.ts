// A chatbot that holds a conversation about one image. Follow-up questions reuse the image's cached caption and
// embeddings, and earlier turns go to the LLM as context ("What color are their tongues?" after "How many dogs?").
//
// Run with the questions on the command line:
//   npx tsc -p . && node dist/examples/chatbot.js --tiny --llm none test/fixtures/images/truck.jpg "How many people are there?" "What color is the truck?"
// Or interactively (type questions, empty line to quit):
//   node dist/examples/chatbot.js --tiny test/fixtures/images/truck.jpg
import { createInterface } from 'node:readline/promises';
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
  for await (const chunk of session.stream(question)) {
    if (chunk.type === 'answer-delta') process.stdout.write(chunk.text);
    if (chunk.type === 'result') {
      const { result } = chunk;
      if (result.source === 'vqa') process.stdout.write(result.answer);
      const cached = result.cached.caption && result.cached.imageEmbeddings ? 'image work cached' : 'image encoded';
      process.stdout.write(`   [${result.source}, ${cached}, ${Math.round(result.timings.total)} ms]\n`);
    }
  }
}

try {
  if (scripted.length > 0) {
    for (const question of scripted) await turn(question);
  } else {
    const terminal = createInterface({ input: process.stdin, output: process.stdout });
    for (;;) {
      const question = (await terminal.question('> ')).trim();
      if (!question) break;
      await turn(question);
    }
    terminal.close();
  }
  console.log(`(${session.history.length} turns in the history)`);
} finally {
  await vision.dispose();
}
