import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { packageRoot } from '../paths.js';
import { register as registerAsk } from './commands/ask.js';
import { register as registerCaption } from './commands/caption.js';
import { register as registerCandidates } from './commands/candidates.js';
import { register as registerChat } from './commands/chat.js';
import { register as registerEval } from './commands/eval.js';
import { register as registerModels } from './commands/models.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerWorker } from './commands/worker.js';
import { printError } from './shared.js';

/** Builds the `vqa-llm` program; commands register themselves. */
export function createProgram(): Command {
  const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const program = new Command('vqa-llm')
    .description('Answer questions about images with local vision models (BLIP, VLE) and a text-only LLM')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  registerAsk(program);
  registerChat(program);
  registerCaption(program);
  registerCandidates(program);
  registerModels(program);
  registerServe(program);
  registerEval(program);
  registerWorker(program);
  return program;
}

/** Runs the CLI; resolves to the exit code. Errors print their message (and hint), never a crash. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    printError(error);
    return 1;
  }
}
