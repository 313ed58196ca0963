import { describe, expect, it } from 'vitest';
import { benchColdStart } from '../../dist/bench/cold-start.js';

describe('benchColdStart', () => {
  it('should time a whole ask process that answered, the import alone and node alone', async () => {
    const result = await benchColdStart({ runs: 1 });
    expect(result.askRunsMs).toHaveLength(1);
    expect(result.command).toMatch(/^node bin\/vqa-llm\.js ask .* --llm none --json$/);
    // Each process does at least what the one before it does.
    expect(result.importProcessMs).toBeGreaterThan(result.importMs);
    expect(result.askMs).toBeGreaterThan(result.nodeStartMs);
    expect(result.importMs).toBeGreaterThan(0);
  });
});
