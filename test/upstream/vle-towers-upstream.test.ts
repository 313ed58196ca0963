// VLE's two towers as the exporter builds them, run by onnxruntime-node, against transformers' CLIPVisionModel and
// DebertaV2Model with the same random weights (models/vqa_llm_upstream/vle_towers.py).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OnnxGraph } from '../../dist/src/runtime/onnx-session.js';
import { maxAbsDifference, toTensor, type TensorJson } from '../helpers/fixtures.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

interface TowersReference {
  pixelValues: TensorJson;
  lastHiddenState: TensorJson;
  postLayernorm: TensorJson;
  texts: { inputIds: number[][]; attentionMask: number[][]; lastHiddenState: TensorJson }[];
}

const float = (name: string) => ({ name, dtype: 'float32', shape: ['batch'] as (number | string)[] });
const int64 = (name: string) => ({ name, dtype: 'int64', shape: ['batch', 'sequence'] as (number | string)[] });
const int64Tensor = (rows: number[][]) => ({
  type: 'int64' as const,
  data: BigInt64Array.from(rows.flat().map(BigInt)),
  dims: [rows.length, rows[0]!.length],
});

/** Largest difference over the positions the attention mask keeps (padding outputs are not defined upstream). */
function maskedDifference(got: Float32Array, expected: TensorJson, mask: number[][]): number {
  const [, sequence, hidden] = expected.dims as [number, number, number];
  let max = 0;
  mask.forEach((row, batch) =>
    row.forEach((keep, position) => {
      if (!keep) return;
      const offset = (batch * sequence + position) * hidden;
      for (let index = offset; index < offset + hidden; index += 1) max = Math.max(max, Math.abs(got[index]! - expected.data[index]!));
    }),
  );
  return max;
}

describeUpstream('vle_towers', "VLE's towers against transformers' CLIPVisionModel and DebertaV2Model", () => {
  let reference: TowersReference;
  let vision: OnnxGraph;
  let text: OnnxGraph;

  beforeAll(async () => {
    reference = readUpstreamJson<TowersReference>('vle_towers', 'reference.json');
    vision = await OnnxGraph.create(upstreamPath('vle_towers', 'vision_tower.onnx'), {
      name: 'visionTower',
      inputs: [float('pixel_values')],
      outputs: [float('last_hidden_state'), float('post_layernorm')],
    });
    text = await OnnxGraph.create(upstreamPath('vle_towers', 'text_tower.onnx'), {
      name: 'textTower',
      inputs: [int64('input_ids'), int64('attention_mask')],
      outputs: [float('last_hidden_state')],
    });
  });
  afterAll(async () => {
    await Promise.all([vision?.dispose(), text?.dispose()]);
  });

  it("should reproduce CLIPVisionModel's last hidden state, and its post-layernorm over every token as VLE applies it", async () => {
    const pixels = toTensor(reference.pixelValues);
    const outputs = await vision.run({ pixel_values: { type: 'float32', data: pixels.data, dims: pixels.dims } });
    expect(outputs.last_hidden_state!.dims).toEqual(reference.lastHiddenState.dims);
    const hidden = maxAbsDifference(outputs.last_hidden_state!.data as Float32Array, reference.lastHiddenState.data);
    const normed = maxAbsDifference(outputs.post_layernorm!.data as Float32Array, reference.postLayernorm.data);
    console.info(`vle towers: CLIP last hidden state max |diff| ${hidden.toExponential(2)}, post-layernorm ${normed.toExponential(2)}`);
    expect(hidden).toBeLessThan(1e-4);
    expect(normed).toBeLessThan(1e-4);
  });

  it("should reproduce DebertaV2Model's output with v3 relative attention, from 3 tokens to past the bucket range, padded batch included", async () => {
    expect(reference.texts.some((entry) => entry.inputIds[0]!.length > 200)).toBe(true);
    for (const entry of reference.texts) {
      const { last_hidden_state } = await text.run({ input_ids: int64Tensor(entry.inputIds), attention_mask: int64Tensor(entry.attentionMask) });
      expect(last_hidden_state!.dims).toEqual(entry.lastHiddenState.dims);
      const difference = maskedDifference(last_hidden_state!.data as Float32Array, entry.lastHiddenState, entry.attentionMask);
      console.info(`vle towers: DeBERTa ${JSON.stringify(entry.lastHiddenState.dims)} max |diff| ${difference.toExponential(2)}`);
      expect(difference).toBeLessThan(1e-4);
    }
  });
});
