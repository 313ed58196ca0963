// Call the server with the official `openai` SDK, as any chatbot would: an image as a data URL and a question,
// plain and streaming. The pipeline's full result (caption, candidates, timings) rides in the extra `vqa_llm` field.
//
// Against a running server (`vqa-llm serve`):
//   npx tsc -p . && node dist/examples/openai-client.js --url http://127.0.0.1:8080 test/fixtures/images/fishing.jpg
// Or let the example start one in-process on the tiny models:
//   npx tsc -p . && node dist/examples/openai-client.js --tiny --llm none test/fixtures/images/fishing.jpg
import { readFile } from 'node:fs/promises';
import OpenAI from 'openai';
import { startVqaServer } from '../src/index.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image, question = "What is in the man's hand?"] = args.positionals;
if (!image) usage('openai-client.js [--url URL | --tiny] IMAGE [QUESTION]');

// 1. A server: the one given, or our own on a free loopback port.
let stop = async (): Promise<void> => {};
let url = args.values.url;
if (!url) {
  const server = await startVqaServer({ vision: await openVision(args), llm: openLlm(args), disposeVision: true, logger: false, host: '127.0.0.1', port: 0 });
  url = server.url;
  stop = () => server.close();
}

try {
  // 2. The official client; the key is ignored by vqa-llm but the SDK insists on one.
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: process.env.VQA_LLM_API_KEY ?? 'unused' });
  const [model] = (await client.models.list()).data;
  const bytes = await readFile(fromRoot(image));
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${bytes.toString('base64')}` } }, { type: 'text', text: question }] },
  ];

  // 3. Plain: one response, the answer in choices[0].message.content.
  const completion = await client.chat.completions.create({ model: model!.id, messages });
  const result = (completion as unknown as { vqa_llm: { caption: string; candidates: { answer: string; score: number }[]; source: string } }).vqa_llm;
  console.log(`answer:     ${completion.choices[0]!.message.content}`);
  console.log(`caption:    ${result.caption}`);
  console.log(`candidates: ${result.candidates.map((candidate) => `${candidate.answer} (${candidate.score.toFixed(2)})`).join(', ')}  [source ${result.source}]`);

  // 4. Streaming: the sentence arrives in pieces, as from any chat model.
  process.stdout.write('streamed:   ');
  for await (const chunk of await client.chat.completions.create({ model: model!.id, messages, stream: true })) {
    process.stdout.write(chunk.choices[0]?.delta.content ?? '');
  }
  process.stdout.write('\n');
} finally {
  await stop();
}
