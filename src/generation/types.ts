/**
 * One decoder with its own cache of past keys/values, one row per sequence. Searches call `step` with the
 * tokens each row adds (all rows add the same number) and get back the logits of each row's last position.
 */
export interface StepDecoder {
  step(newTokens: number[][]): Promise<Float32Array[]>;
  /** Rebuilds the cache so that row i continues the sequence that row `rows[i]` held. */
  reorder(rows: number[]): void;
}

export interface SearchOptions {
  promptIds: number[];
  eosTokenId: number;
  maxNewTokens: number;
  minNewTokens: number;
  repetitionPenalty: number;
  numBeams: number;
  lengthPenalty?: number;
  /** Checked between steps: cancels a long decode cooperatively. */
  isCancelled?: () => boolean;
}

export interface SearchResult {
  /** Generated ids after the prompt; ends with eos when decoding stopped on it. */
  tokenIds: number[];
  steps: number;
}
