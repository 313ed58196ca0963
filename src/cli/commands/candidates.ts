import type { Command } from 'commander';
import { addModelOptions, parsePositiveInteger, printJson, resolveModelFolder, type ModelCommandOptions } from '../shared.js';

interface CandidatesCommandOptions extends ModelCommandOptions {
  topK: number;
}

export function register(program: Command): void {
  addModelOptions(
    program
      .command('candidates')
      .description("the VLE VQA model's top-k answers with scores")
      .argument('<image>', 'image file, http(s) URL or data URL')
      .argument('<question>', 'question about the image')
      .option('--top-k <n>', 'how many candidates', parsePositiveInteger('--top-k'), 5)
      .option('--json', 'print {"candidates": [{"answer", "score"}]}'),
  ).action(async (image: string, question: string, options: CandidatesCommandOptions) => {
    const folder = await resolveModelFolder(options.vqaModel, options);
    const { VleVqa } = await import('../../runtime/vle-vqa.js');
    // One question per process: no follow-up would reuse fusion's cached image part (see ask-action.ts).
    const vqa = await VleVqa.load(folder, { threads: options.threads, workers: options.workers, quantized: options.int8, fusionCacheBytes: 0 });
    try {
      const { candidates } = await vqa.candidates(image, question, { topK: options.topK });
      if (options.json) {
        printJson({ candidates });
      } else {
        const width = Math.max(...candidates.map((candidate) => candidate.answer.length));
        for (const candidate of candidates) process.stdout.write(`${candidate.answer.padEnd(width)}  ${candidate.score.toFixed(4)}\n`);
      }
    } finally {
      await vqa.dispose();
    }
  });
}
