import type { Command } from 'commander';
import { addLlmOptions, type LlmCommandOptions } from '../llm-options.js';
import { addModelOptions } from '../shared.js';

// The helpers other commands (worker) import from here; they live in light modules of their own.
export { addLlmOptions, type LlmCommandOptions } from '../llm-options.js';
export { abortOnInterrupt, createChainForCli, createLlmForCli, describeFallback, disposeLlmForCli } from '../llm-setup.js';

/** Registers `vqa-llm ask IMAGE QUESTION`; what it runs loads when it runs (./ask-action.ts). */
export function register(program: Command): void {
  addLlmOptions(
    addModelOptions(
      program
        .command('ask')
        .description('answer a question about an image: VQA candidates and a caption, picked and phrased by an LLM')
        .argument('<image>', 'image file, http(s) URL or data URL')
        .argument('<question>', 'the question, in quotes'),
    ),
  )
    .option('--json', 'print the whole result (answer, candidates, caption, source, timings, models)')
    .action(async (image: string, question: string, options: LlmCommandOptions) => (await import('./ask-action.js')).runAsk(image, question, options));
}
