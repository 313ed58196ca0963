import { abortOnInterrupt, createChainForCli, createLlmForCli, describeFallback, disposeLlmForCli } from '../llm-setup.js';
import type { LlmCommandOptions } from '../llm-options.js';
import { openVisionModels, printJson } from '../shared.js';

/** `vqa-llm ask IMAGE QUESTION`: loads the LLM (when there is one) and the vision models, answers, releases them. */
export async function runAsk(image: string, question: string, options: LlmCommandOptions): Promise<void> {
  // A bad --llm setup (no key for api.openai.com) should fail before the models spend seconds loading.
  const llm = await createLlmForCli(options);
  // One question per process: nothing would reuse fusion's cached image part, and splitting the graph costs load time.
  const vision = await openVisionModels(options, { fusionCacheBytes: 0 }).catch(async (error: unknown) => {
    await disposeLlmForCli(llm);
    throw error;
  });
  const interrupt = abortOnInterrupt();
  try {
    const chain = createChainForCli(vision, llm, options);
    const result = await chain.invoke({ image, question }, { signal: interrupt.signal });
    if (options.json) {
      printJson(result);
    } else {
      process.stdout.write(`${result.answer}\n`);
      const note = describeFallback(result);
      if (note) process.stderr.write(`${note}\n`);
    }
  } finally {
    interrupt.dispose();
    await vision.dispose();
    await disposeLlmForCli(llm);
  }
}
