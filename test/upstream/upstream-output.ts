// Outputs of `npm run fixtures:upstream` (models/make_upstream_fixtures.py): checkpoints made with transformers (and,
// for VLE as a whole, committed references from iflytek/VLE), exported by the project's exporter, and the upstream
// code's own outputs. They need Python with the pinned reference stack, so they are generated, not committed.
// Without them these suites skip, unless VQA_LLM_REQUIRE_UPSTREAM=1 (set by .ci/run), where a missing part fails.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';
import { root } from '../helpers/fixtures.js';

/** VQA_LLM_UPSTREAM_DIR points the suites at another output, e.g. the base-dimension run (`--base --out DIR`). */
export const upstreamDir = process.env.VQA_LLM_UPSTREAM_DIR ?? join(root, 'test', 'output', 'upstream');
export const upstreamRequired = process.env.VQA_LLM_REQUIRE_UPSTREAM === '1';

/** A folder or file under the upstream outputs. */
export const upstreamPath = (...parts: string[]): string => join(upstreamDir, ...parts);

export function readUpstreamJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(upstreamPath(...parts), 'utf8')) as T;
}

/**
 * `describe` over one part of the upstream outputs (`part` is its folder under test/output/upstream): skipped when
 * the part has not been generated, failing instead when VQA_LLM_REQUIRE_UPSTREAM=1.
 */
export function describeUpstream(part: string, name: string, body: () => void): void {
  const present = existsSync(join(upstreamPath(part), 'done.json'));
  if (!present && upstreamRequired) {
    describe(name, () => {
      throw new Error(`${upstreamPath(part)} has no done.json: run npm run fixtures:upstream first`);
    });
    return;
  }
  describe.skipIf(!present)(name, body);
}
