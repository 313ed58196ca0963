import type { Command } from 'commander';
import { register as registerAsk } from './commands/ask.js';
import { register as registerCaption } from './commands/caption.js';
import { register as registerCandidates } from './commands/candidates.js';
import { register as registerChat } from './commands/chat.js';
import { register as registerEval } from './commands/eval.js';
import { register as registerModels } from './commands/models.js';
import { register as registerServe } from './commands/serve.js';
import { register as registerWorker } from './commands/worker.js';
import { createBaseProgram } from './program.js';

export { main } from './run.js';

/**
 * Builds the whole `vqa-llm` program, every command registered, for code that inspects it (the deploy manifests'
 * test). The CLI itself starts from ./run.ts, which imports only the command it runs.
 */
export function createProgram(): Command {
  const program = createBaseProgram();
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
