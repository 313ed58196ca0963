import { describe, expect, it } from 'vitest';
import { residentSplit } from '../../dist/bench/load-memory.js';

describe('residentSplit', () => {
  it.runIf(process.platform === 'linux')("should read this process's resident memory as anonymous and file pages that add up to its RSS", () => {
    const split = residentSplit();
    const rssMiB = process.memoryUsage().rss / (1024 * 1024);
    expect(split).toBeDefined();
    expect(split!.anonymous).toBeGreaterThan(0);
    expect(split!.file).toBeGreaterThan(0);
    // RSS is RssAnon + RssFile + RssShmem (next to nothing here), read a moment apart.
    expect(Math.abs(split!.anonymous + split!.file - rssMiB)).toBeLessThan(Math.max(8, rssMiB * 0.1));
  });
});
