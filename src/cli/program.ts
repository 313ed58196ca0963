// The `vqa-llm` program without its commands, and where each command's module is: the CLI imports only the module
// of the command it runs (every module for the command list of `--help`, none for `--version`), so that a command
// never pays for another's imports (the server stack, the queue, the converter).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { packageRoot } from '../paths.js';

/** A command module: it adds its command, with every option, to the program. */
export interface CommandModule {
  register(program: Command): void;
}

/** Every command, in the order `--help` lists them, with the import of its module. */
export const COMMANDS: readonly { name: string; load: () => Promise<CommandModule> }[] = [
  { name: 'ask', load: () => import('./commands/ask.js') },
  { name: 'chat', load: () => import('./commands/chat.js') },
  { name: 'caption', load: () => import('./commands/caption.js') },
  { name: 'candidates', load: () => import('./commands/candidates.js') },
  { name: 'models', load: () => import('./commands/models.js') },
  { name: 'serve', load: () => import('./commands/serve.js') },
  { name: 'eval', load: () => import('./commands/eval.js') },
  { name: 'worker', load: () => import('./commands/worker.js') },
];

/** The program with its name, description, version and error handling, and no command yet. */
export function createBaseProgram(): Command {
  const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return new Command('vqa-llm')
    .description('Answer questions about images with local vision models (BLIP, VLE) and a text-only LLM')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
}

/**
 * The commands `argv` needs registered: the one it names; none for `--version` alone; all of them otherwise (`--help`,
 * `help`, no command, a name that is not a command, for which commander suggests the nearest, or `-h`/`--help`
 * before the name: `vqa-llm --help ask` prints the program's help, which lists every command).
 */
export function commandsFor(argv: readonly string[]): readonly { name: string; load: () => Promise<CommandModule> }[] {
  const args = argv.slice(2);
  // The program has no option of its own that takes a value: the first operand is the command's name.
  const nameAt = args.findIndex((arg) => !arg.startsWith('-'));
  if (nameAt === -1 && args.length > 0 && args.every((arg) => arg === '-V' || arg === '--version')) return [];
  // A help flag before the name is the program's (commander stops at it and prints the program's help).
  if (args.slice(0, nameAt === -1 ? args.length : nameAt).some((arg) => arg === '-h' || arg === '--help')) return COMMANDS;
  const named = COMMANDS.find((command) => command.name === args[nameAt]);
  return named ? [named] : COMMANDS;
}

/** The program with the commands `argv` needs; see {@link commandsFor}. */
export async function createProgramFor(argv: readonly string[]): Promise<Command> {
  const program = createBaseProgram();
  // One import at a time: Node 20 can fail concurrent dynamic imports whose graphs share a module while they link
  // ("request for 'node:os' is not in cache", nodejs/node#52187). The CLI's lazy imports all follow this rule.
  for (const command of commandsFor(argv)) (await command.load()).register(program);
  return program;
}
