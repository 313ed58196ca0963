import type { StepDecoder } from '../generation/types.js';
import { int64Tensor, type OnnxGraph, type TensorData } from './onnx-session.js';
import { gatherRows, lastPositionRows } from './tensor-ops.js';

/**
 * BLIP's text decoder with its caches: the cross-attention keys/values over the image tokens are computed once
 * (by the crossAttentionCache graph) and the self-attention keys/values grow by one position per step, so a
 * generated token costs neither again.
 */
export class BlipStepDecoder implements StepDecoder {
  private past: Record<string, TensorData>;

  constructor(
    private readonly decoder: OnnxGraph,
    private readonly cross: Record<string, TensorData>,
    private readonly layers: number,
  ) {
    const [rows, heads, , headSize] = cross['cross_key.0']!.dims as [number, number, number, number];
    const empty = (): TensorData => ({ type: 'float32', data: new Float32Array(0), dims: [rows, heads, 0, headSize] });
    this.past = {};
    for (let layer = 0; layer < layers; layer += 1) {
      this.past[`past_key.${layer}`] = empty();
      this.past[`past_value.${layer}`] = empty();
    }
  }

  async step(newTokens: number[][]): Promise<Float32Array[]> {
    const sequence = newTokens[0]!.length;
    const feeds: Record<string, TensorData> = {
      input_ids: int64Tensor(newTokens.flat(), [newTokens.length, sequence]),
      ...this.past,
      ...this.cross,
    };
    const outputs = await this.decoder.run(feeds);
    for (let layer = 0; layer < this.layers; layer += 1) {
      this.past[`past_key.${layer}`] = outputs[`present_key.${layer}`]!;
      this.past[`past_value.${layer}`] = outputs[`present_value.${layer}`]!;
    }
    return lastPositionRows(outputs.logits!);
  }

  reorder(rows: number[]): void {
    if (rows.every((row, index) => row === index)) return;
    for (const name of Object.keys(this.past)) this.past[name] = gatherRows(this.past[name]!, rows);
  }
}

/** Repeats batch-1 cross-attention tensors for every beam, once per caption. */
export function expandRows(tensors: Record<string, TensorData>, rows: number): Record<string, TensorData> {
  if (rows === 1) return tensors;
  const indices = new Array<number>(rows).fill(0);
  return Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, gatherRows(tensor, indices)]));
}
