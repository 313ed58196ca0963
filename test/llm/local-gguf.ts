// The tiny GGUF models of the `gguf` upstream part (models/make_tiny_gguf.py via npm run fixtures:upstream): a
// 2-layer llama with random weights and a chat template, and the bad files the loader must refuse with a reason.
import { describeUpstream, upstreamPath } from '../upstream/upstream-output.js';

/** A file of the gguf part: tiny.gguf, no-template.gguf, unknown-arch.gguf, truncated.gguf, not-gguf.gguf. */
export const ggufPath = (name: string): string => upstreamPath('gguf', name);

/** `describe` over the tiny GGUF models: skipped until they are generated, failing in CI when they are required. */
export function describeGguf(name: string, body: () => void): void {
  describeUpstream('gguf', name, body);
}

/** Options every test model gets: one thread (a shared CI machine spins badly with more), a small context. */
export const TEST_MODEL_OPTIONS = { threads: 1, contextSize: 2048 } as const;
