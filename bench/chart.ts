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
  llm: '#dc2626',
  orchestration: '#d1d5db',
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
  const legend = Object.entries(colours)
    .map(([name, colour], index) => `<rect x="${16 + index * 105}" y="${y}" width="12" height="12" fill="${colour}"/><text x="${32 + index * 105}" y="${y + 11}" font-size="12">${name}</text>`)
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
