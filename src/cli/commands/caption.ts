import type { Command } from 'commander';
import { addModelOptions, parseNumber, parseNonNegativeInteger, parsePositiveInteger, printJson, resolveModelFolder, type ModelCommandOptions } from '../shared.js';

interface CaptionCommandOptions extends ModelCommandOptions {
  prefix?: string;
  beams?: number;
  maxNewTokens?: number;
  minNewTokens?: number;
  repetitionPenalty?: number;
}

export function register(program: Command): void {
  addModelOptions(
    program
      .command('caption')
      .description('describe an image with the BLIP captioner')
      .argument('<image>', 'image file, http(s) URL or data URL')
      .option('--prefix <text>', 'text the caption continues, e.g. "a picture of"')
      .option('--beams <n>', 'beam search width (1 = greedy)', parsePositiveInteger('--beams'))
      .option('--max-new-tokens <n>', 'longest caption in tokens', parsePositiveInteger('--max-new-tokens'))
      .option('--min-new-tokens <n>', 'shortest caption in tokens', parseNonNegativeInteger('--min-new-tokens'))
      .option('--repetition-penalty <x>', 'penalty for repeated tokens (1 = off)', parseNumber('--repetition-penalty'))
      .option('--json', 'print {"caption": ...}'),
  ).action(async (image: string, options: CaptionCommandOptions) => {
    const folder = await resolveModelFolder(options.captionModel, options);
    const { BlipCaptioner } = await import('../../runtime/blip-captioner.js');
    const captioner = await BlipCaptioner.load(folder, { threads: options.threads, workers: options.workers, quantized: options.int8 });
    try {
      const result = await captioner.caption(image, {
        prefix: options.prefix,
        numBeams: options.beams,
        maxNewTokens: options.maxNewTokens,
        minNewTokens: options.minNewTokens,
        repetitionPenalty: options.repetitionPenalty,
      });
      if (options.json) printJson({ caption: result.caption });
      else process.stdout.write(`${result.caption}\n`);
    } finally {
      await captioner.dispose();
    }
  });
}
