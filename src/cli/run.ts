// The CLI's entry (bin/vqa-llm.js): light, so that a command loads only what it needs (see ./program.ts).
import { CommanderError } from 'commander';
import { createProgramFor } from './program.js';
import { printError } from './shared.js';

/** Runs the CLI; resolves to the exit code. Errors print their message (and hint), never a crash. */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = await createProgramFor(argv);
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    printError(error);
    return 1;
  }
}
