// An agent that uses the visual question answering tool beside another tool (a calculator).
// With an LLM configured (OPENAI_BASE_URL / OPENAI_API_KEY; it must support tool calls) the LLM drives the agent;
// without one, a scripted chat model plays the agent's part so the example runs offline, and the tool itself
// still runs the real vision models.
//
// Run:
//   npx tsc -p . && node dist/examples/agent-tool.js --tiny --llm none test/fixtures/images/truck.jpg
//   OPENAI_API_KEY=sk-... node dist/examples/agent-tool.js test/fixtures/eval/dogs.jpg
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { createVisualQuestionAnsweringTool } from '../src/index.js';
import { fromRoot, openLlm, openVision, parseExampleArgs, usage } from './support.js';

const args = parseExampleArgs();
const [image] = args.positionals;
if (!image) usage('agent-tool.js [--tiny] [--llm ...] IMAGE');
const imagePath = fromRoot(image);

// 1. The two tools: seeing, and arithmetic the LLM should not do in its head.
const vision = await openVision(args);
const llm = openLlm(args);
const vqa = createVisualQuestionAnsweringTool({ chain: { vision, llm } });
const multiply = tool(async ({ a, b }: { a: number; b: number }) => String(a * b), {
  name: 'multiply',
  description: 'Multiplies two numbers.',
  schema: z.object({ a: z.number(), b: z.number() }),
});

// 2. The agent's model: the configured LLM, or a script that calls the tools the way an LLM would.
function lastToolText(messages: BaseMessage[]): string {
  return String(messages.filter((message) => message.getType() === 'tool').at(-1)?.content ?? '');
}
const agentModel =
  llm !== 'none'
    ? llm
    : fakeModel()
        .respondWithTools([{ name: 'visual_question_answering', args: { image: imagePath, question: 'How many people are there?' } }])
        .respond((messages: BaseMessage[]) => {
          // Read the tool's short answer as a number, as an LLM would, and ask the calculator.
          const count = Number.parseInt(JSON.parse(lastToolText(messages)).shortAnswer, 10);
          return new AIMessage({ content: '', tool_calls: [{ name: 'multiply', args: { a: Number.isNaN(count) ? 1 : count, b: 3 }, id: 'call-multiply', type: 'tool_call' }] });
        })
        .respond((messages: BaseMessage[]) => new AIMessage(`Three times the number of people in the picture is ${lastToolText(messages)}.`));

const agent = createAgent({ model: agentModel, tools: [vqa, multiply], systemPrompt: 'Use the tools. The image is at the path the user gives.' });

try {
  // 3. One request that needs both tools.
  const { messages } = await agent.invoke({ messages: [{ role: 'user', content: `How many people are in ${imagePath}? Multiply that by 3.` }] });
  for (const message of messages) {
    const calls = (message as AIMessage).tool_calls?.map((call) => `${call.name}(${JSON.stringify(call.args)})`).join(', ');
    console.log(`${message.getType().padEnd(5)} ${calls ? `→ ${calls}` : String(message.content)}`);
  }
} finally {
  await vision.dispose();
}
