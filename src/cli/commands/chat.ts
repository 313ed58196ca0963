import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { VqaChatSession } from '../../../chains/vqa-chat.js';
import { VqaLlmError } from '../../errors/vqa-llm-error.js';
import { addLlmOptions, type LlmCommandOptions } from '../llm-options.js';
import { abortOnInterrupt, createChainForCli, createLlmForCli, describeFallback, disposeLlmForCli } from '../llm-setup.js';
import { addModelOptions, openVisionModels, printError } from '../shared.js';

/** Registers `vqa-llm chat IMAGE`: questions from stdin, answers streamed as they arrive. */
export function register(program: Command): void {
  addLlmOptions(
    addModelOptions(
      program
        .command('chat')
        .description('talk about one image: ask questions one per line (/reset forgets the conversation, /exit or Ctrl-D ends)')
        .argument('<image>', 'image file, http(s) URL or data URL'),
    ),
  ).action(async (image: string, options: LlmCommandOptions) => {
    const { createVqaChat, VqaChatSession } = await import('../../../chains/vqa-chat.js');
    const llm = await createLlmForCli(options);
    const vision = await openVisionModels(options).catch(async (error: unknown) => {
      await disposeLlmForCli(llm);
      throw error;
    });
    const session = new VqaChatSession(createVqaChat(createChainForCli(vision, llm, options)), image);
    const lines = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
    // Taken at once: the iterator buffers lines piped in or typed ahead while the image loads or an answer streams.
    const input = lines[Symbol.asyncIterator]();
    try {
      // The image is loaded and checked once up front, so a bad path fails before the first question.
      await vision.loadImage(image);
      lines.setPrompt('? ');
      lines.prompt();
      for (let next = await input.next(); !next.done; next = await input.next()) {
        const question = next.value.trim();
        if (question === '/exit') break;
        if (question === '/reset') session.reset();
        else if (question !== '') await answer(session, question);
        lines.prompt();
      }
    } finally {
      lines.close();
      await vision.dispose();
      await disposeLlmForCli(llm);
    }
  });
}

async function answer(session: VqaChatSession, question: string): Promise<void> {
  const interrupt = abortOnInterrupt();
  let printed = '';
  try {
    for await (const chunk of session.stream(question, { signal: interrupt.signal })) {
      if (chunk.type === 'answer-delta') {
        process.stdout.write(chunk.text);
        printed += chunk.text;
      } else if (chunk.type === 'result') {
        const { result } = chunk;
        // The deltas add up to the answer, except text from a reply that then proved unusable: the fallback follows.
        if (result.answer !== printed) process.stdout.write(`${printed ? '\n' : ''}${result.answer}`);
        process.stdout.write('\n');
        const note = describeFallback(result);
        if (note) process.stderr.write(`${note}\n`);
      }
    }
  } catch (error) {
    if (printed !== '') process.stdout.write('\n');
    // A bad question or a Ctrl-C ends this turn, not the conversation.
    if (!VqaLlmError.isInstance(error) && !interrupt.signal.aborted) throw error;
    printError(error);
  } finally {
    interrupt.dispose();
  }
}
