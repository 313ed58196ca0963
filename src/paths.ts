import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/**
 * The package's root folder (where package.json, models/ and prompts/ live), found from this module's place in
 * dist/src/ or src/.
 */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..') : join(here, '..');
}
