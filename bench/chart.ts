import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// An SVG chart of where the time goes for one question: the caption path and the VQA path run concurrently, so
// each gets its own lane of stages, drawn to scale, for the first question on an image and for a follow-up.

export interface Lane {
  label: string;
  stages: { name: string; ms: number }[];
}

export interface ChartGroup {
  title: string;
  lanes: Lane[];
}

const colours: Record<string, string> = {
  decode: '#6b7280',
  preprocess: '#f59e0b',
  vision: '#2563eb',
  crossAttention: '#7c3aed',
  decoder: '#db2777',
  fusion: '#059669',
  inference: '#1e3a8a',
  llm: '#dc2626',
  orchestration: '#d1d5db',
  bound: '#111827',
};

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderLatencyChart(title: string, groups: ChartGroup[]): string {
  const width = 960;
  const left = 190;
  const right = 90;
  const laneHeight = 26;
  const plotWidth = width - left - right;
  const longest = Math.max(1, ...groups.flatMap((group) => group.lanes.map((lane) => lane.stages.reduce((sum, stage) => sum + stage.ms, 0))));
  const parts: string[] = [];
  let y = 50;
  for (const group of groups) {
    parts.push(`<text x="16" y="${y}" font-weight="600" font-size="14">${escape(group.title)}</text>`);
    y += 12;
    for (const lane of group.lanes) {
      parts.push(`<text x="${left - 10}" y="${y + 17}" text-anchor="end" font-size="12">${escape(lane.label)}</text>`);
      let x = left;
      for (const stage of lane.stages) {
        const w = (stage.ms / longest) * plotWidth;
        if (w <= 0) continue;
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${Math.max(0.5, w).toFixed(1)}" height="${laneHeight - 6}" fill="${colours[stage.name] ?? '#111827'}"><title>${escape(stage.name)}: ${stage.ms.toFixed(1)} ms</title></rect>`,
        );
        x += w;
      }
      const total = lane.stages.reduce((sum, stage) => sum + stage.ms, 0);
      parts.push(`<text x="${(x + 6).toFixed(1)}" y="${y + 17}" font-size="12" fill="#374151">${total >= 100 ? total.toFixed(0) : total.toFixed(1)} ms</text>`);
      y += laneHeight;
    }
    y += 22;
  }
  // Each entry as wide as its name (about 7 px a character at 12 px), so that longer names do not overlap.
  let legendX = 16;
  const legend = Object.entries(colours)
    .map(([name, colour]) => {
      const entry = `<rect x="${legendX}" y="${y}" width="12" height="12" fill="${colour}"/><text x="${legendX + 16}" y="${y + 11}" font-size="12">${name}</text>`;
      legendX += 16 + name.length * 7 + 14;
      return entry;
    })
    .join('');
  const height = y + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="16" y="26" font-size="16" font-weight="700">${escape(title)}</text>
${parts.join('\n')}
${legend}
</svg>
`;
}

interface RuntimeResult {
  name: string;
  firstQuestion: Record<string, number>;
  followUpQuestion: Record<string, number>;
}

interface ChainResult {
  firstQuestion: { inference: number; orchestration: number; llm: number };
  followUpQuestion: { inference: number; orchestration: number; llm: number };
}

function chartGroups(runtime: RuntimeResult, chain: ChainResult | undefined): ChartGroup[] {
  const first = runtime.firstQuestion;
  const follow = runtime.followUpQuestion;
  // Each path's measured total minus its stages: worker messaging, tokenization, result handling.
  const withRemainder = (stages: { name: string; ms: number }[], total: number | undefined) => [
    ...stages,
    { name: 'orchestration', ms: Math.max(0, (total ?? 0) - stages.reduce((sum, stage) => sum + stage.ms, 0)) },
  ];
  const chainLane = (label: string, breakdown: ChainResult['firstQuestion'] | undefined) =>
    breakdown
      ? [{ label, stages: [{ name: 'inference', ms: breakdown.inference }, { name: 'orchestration', ms: breakdown.orchestration }, { name: 'llm', ms: breakdown.llm }] }]
      : [];
  return [
    {
      title: `First question on an image: ${runtime.name}`,
      lanes: [
        {
          label: 'caption path',
          stages: withRemainder(
            [{ name: 'decode', ms: first.decode ?? 0 }, { name: 'preprocess', ms: first.captionPreprocess ?? 0 }, { name: 'vision', ms: first.captionVision ?? 0 }, { name: 'crossAttention', ms: first.crossAttention ?? 0 }, { name: 'decoder', ms: first.decoder ?? 0 }],
            first.captionTotal,
          ),
        },
        {
          label: 'VQA path',
          stages: withRemainder([{ name: 'decode', ms: first.decode ?? 0 }, { name: 'preprocess', ms: first.vqaPreprocess ?? 0 }, { name: 'vision', ms: first.vqaVision ?? 0 }, { name: 'fusion', ms: first.fusion ?? 0 }], first.vqaTotal),
        },
        ...chainLane('VQA+LLM chain, end to end', chain?.firstQuestion),
      ],
    },
    {
      title: 'Follow-up question on the same image (caption and image embeddings cached)',
      lanes: [
        { label: 'caption path', stages: [{ name: 'orchestration', ms: follow.captionTotal ?? 0 }] },
        { label: 'VQA path', stages: [{ name: 'orchestration', ms: Math.max(0, (follow.vqaTotal ?? 0) - (follow.fusion ?? 0)) }, { name: 'fusion', ms: follow.fusion ?? 0 }] },
        ...chainLane('VQA+LLM chain, end to end', chain?.followUpQuestion),
      ],
    },
  ];
}

interface BoundFigures {
  bound?: { allCoresThreads: number; firstQuestion: { boundMs: number; measuredMs: number; ratio: number }; followUp: { boundMs: number; measuredMs: number; ratio: number } };
}

/** The bound (the question's GFLOP at the all-cores MatMul ceiling) drawn above what the question took. */
function boundGroup(proof: Required<BoundFigures>): ChartGroup {
  const { firstQuestion, followUp, allCoresThreads } = proof.bound;
  return {
    title: `Against the bound: GFLOP / onnxruntime's MatMul ceiling on ${allCoresThreads} cores (median)`,
    lanes: [
      { label: 'first question: bound', stages: [{ name: 'bound', ms: firstQuestion.boundMs }] },
      { label: `measured (${firstQuestion.ratio.toFixed(2)}x)`, stages: [{ name: 'inference', ms: firstQuestion.measuredMs }] },
      { label: 'follow-up: bound', stages: [{ name: 'bound', ms: followUp.boundMs }] },
      { label: `measured (${followUp.ratio.toFixed(2)}x)`, stages: [{ name: 'inference', ms: followUp.measuredMs }] },
    ],
  };
}

/** Draws the chart of the last (largest) model set in a results.json written by `npm run bench`. */
export function writeLatencyChart(resultsPath: string, chartPath: string): void {
  const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as { machine: { cores: number }; runtime: RuntimeResult[]; chain: ChainResult[]; proof?: BoundFigures };
  const groups = chartGroups(results.runtime.at(-1)!, results.chain.at(-1));
  // results.json of 0.1 have no proof, and a run whose FLOPs could not be counted has no bound: no bound group then.
  if (results.proof?.bound) groups.push(boundGroup(results.proof as Required<BoundFigures>));
  const svg = renderLatencyChart(`vqa-llm latency per stage, ${results.machine.cores} cores, median ms`, groups);
  writeFileSync(chartPath, svg);
}

// `node dist/bench/chart.js [results.json] [latency.svg]` redraws the chart without rerunning the benchmarks.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  writeLatencyChart(process.argv[2] ?? join(root, 'bench', 'results.json'), process.argv[3] ?? join(root, 'bench', 'latency.svg'));
}
