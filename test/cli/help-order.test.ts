import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../dist/src/cli/program.js';
import { root } from '../helpers/fixtures.js';

const run = promisify(execFile);
const cli = join(root, 'bin', 'vqa-llm.js');

/** The command names in the "Commands:" section of a help text. */
function listedCommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((match) => match[1]!);
}

// The CLI registers only the command it runs; a help flag before the command's name is the program's own help,
// which must still list every command.
describe('the CLI help, whatever comes first', () => {
  for (const args of [['--help', 'ask'], ['-h', 'serve'], ['--help']]) {
    it(`should list every command for \`vqa-llm ${args.join(' ')}\``, { timeout: 60_000 }, async () => {
      const { stdout } = await run(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' } });
      expect(stdout).toMatch(/^Usage: vqa-llm \[options\] \[command\]/);
      expect(listedCommands(stdout)).toEqual(expect.arrayContaining(COMMANDS.map((command) => command.name)));
    });
  }

  it("should print the named command's own help for `vqa-llm help ask` and `vqa-llm ask --help`", { timeout: 60_000 }, async () => {
    for (const args of [['help', 'ask'], ['ask', '--help']]) {
      const { stdout } = await run(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' } });
      expect(stdout, args.join(' ')).toMatch(/^Usage: vqa-llm ask \[options\]/);
      expect(stdout, args.join(' ')).toContain('--llm');
    }
  });
});
