// Shared by the examples: where the models are and which LLM to use, from a few command-line flags.
//   --tiny                    the tiny test models in test/fixtures/models (no download; answers are nonsense)
//   --models DIR --caption-model NAME --vqa-model NAME   real models (default: blip-image-captioning-base, vle-base-for-vqa)
//   --llm openai|none|auto    auto (default) uses OPENAI_BASE_URL / OPENAI_API_KEY when set, else none
//   --queue redis://...       (batch) ask `vqa-llm worker` processes through Redis instead of loading models here
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { createChatModel, createVisionModels, type VisionModels } from '../src/index.js';
import type { LlmProvider } from '../src/llm/index.js';

/** The repository root, from dist/examples/ or examples/. */
export const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), dirname(fileURLToPath(import.meta.url)).includes(join('dist', 'examples')) ? '../..' : '..');

export interface ExampleArgs {
  positionals: string[];
  values: { tiny?: boolean; models?: string; 'caption-model'?: string; 'vqa-model'?: string; llm?: string; url?: string; concurrency?: string; queue?: string };
}

export function parseExampleArgs(): ExampleArgs {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      tiny: { type: 'boolean' },
      models: { type: 'string' },
      'caption-model': { type: 'string' },
      'vqa-model': { type: 'string' },
      llm: { type: 'string' },
      url: { type: 'string' },
      concurrency: { type: 'string' },
      queue: { type: 'string' },
    },
  });
  return { positionals, values };
}

export function openVision(args: ExampleArgs): Promise<VisionModels> {
  const { values } = args;
  if (values.tiny) {
    return createVisionModels({ modelsDir: join(repositoryRoot, 'test', 'fixtures', 'models'), captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  }
  return createVisionModels({ modelsDir: values.models, captionModel: values['caption-model'], vqaModel: values['vqa-model'] });
}

export function openLlm(args: ExampleArgs): BaseChatModel | 'none' {
  return createChatModel({ provider: (args.values.llm ?? 'auto') as LlmProvider });
}

/** Resolves an example's file argument against the repository root, so the commands work from any folder. */
export function fromRoot(path: string): string {
  return path.startsWith('/') ? path : join(repositoryRoot, path);
}

export function usage(text: string): never {
  process.stderr.write(`usage: ${text}\n`);
  process.exit(2);
}
