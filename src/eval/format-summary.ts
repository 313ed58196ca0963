import { LATENCY_STAGES, type EvalSummary } from './summary.js';

const MAX_IDS_SHOWN = 5;

function percent(fraction: number): string {
  return (100 * fraction).toFixed(2);
}

function share(part: number, whole: number): string {
  return whole === 0 ? '0.0%' : `${((100 * part) / whole).toFixed(1)}%`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd()).join('\n');
}

/**
 * The summary as the text table `vqa-llm eval` prints: accuracy per arm (VQAv2 metric, in percent, 2 decimals
 * as the reference script rounds), the LLM's effect, fallbacks, answer form, latency per stage and every issue.
 *
 * @example
 * ```ts
 * process.stdout.write(formatSummary(summarizeEval({ reference, records })) + '\n');
 * ```
 */
export function formatSummary(summary: EvalSummary): string {
  const out: string[] = [];
  out.push(`VQAv2 accuracy on ${summary.source}: ${summary.predicted} of ${summary.questions} questions scored (${share(summary.predicted, summary.questions)})`);
  if (summary.predicted < summary.questions) out.push(`warning: ${summary.questions - summary.predicted} questions have no usable prediction and are not in the accuracy (see issues).`);
  out.push('');
  if (summary.arms.length > 0) {
    const types = [...new Set(summary.arms.flatMap((arm) => Object.keys(arm.byAnswerType)))];
    const rows = [['accuracy %', ...summary.arms.map((arm) => arm.label)]];
    rows.push(['overall', ...summary.arms.map((arm) => `${percent(arm.accuracy)} (${arm.count})`)]);
    for (const type of types) {
      rows.push([type, ...summary.arms.map((arm) => (arm.byAnswerType[type] ? `${percent(arm.byAnswerType[type].accuracy)} (${arm.byAnswerType[type].count})` : '-'))]);
    }
    out.push(table(rows));
    for (const arm of summary.arms) {
      if (arm.unnormalizedMisses > 0) {
        out.push(`note: ${arm.unnormalizedMisses} ${arm.label} answers scored 0 only because all humans agreed and the metric then compares without normalising (e.g. "Yes" vs "yes").`);
      }
    }
  }
  const { llmEffect, fallbacks, answerForm } = summary;
  if (llmEffect) {
    out.push('');
    out.push(
      `LLM changed ${llmEffect.changed} of ${llmEffect.compared} answers (${share(llmEffect.changed, llmEffect.compared)}): ` +
        `helped ${llmEffect.helped}, hurt ${llmEffect.hurt}, no difference ${llmEffect.neutral}; ` +
        `mean gain ${llmEffect.meanGain >= 0 ? '+' : ''}${percent(llmEffect.meanGain)} points`,
    );
  }
  if (fallbacks && answerForm) {
    const reasons = Object.entries(fallbacks.byReason)
      .sort((left, right) => right[1] - left[1])
      .map(([code, count]) => `${code} ${count}`)
      .join(', ');
    out.push(`LLM fallbacks: ${fallbacks.total} of ${answerForm.count} (${share(fallbacks.total, answerForm.count)})${reasons ? `: ${reasons}` : ''}`);
  }
  if (answerForm) {
    out.push(
      `VQA+LLM sentences: mean ${answerForm.meanWords.toFixed(1)} words, median ${answerForm.medianWords}; ` +
        `full sentences ${share(answerForm.fullSentenceShare, 1)}; contain the short answer ${share(answerForm.containsShortAnswerShare, 1)}`,
    );
  }
  const stages = LATENCY_STAGES.filter((stage) => summary.latency[stage]);
  if (stages.length > 0) {
    out.push('');
    const rows = [['latency ms', 'n', 'mean', 'p50', 'p90', 'p99', 'max']];
    for (const stage of stages) {
      const stats = summary.latency[stage]!;
      rows.push([stage, String(stats.count), ...[stats.mean, stats.p50, stats.p90, stats.p99, stats.max].map((value) => value.toFixed(1))]);
    }
    out.push(table(rows));
  }
  if (summary.issues.length > 0) {
    out.push('');
    out.push('issues:');
    for (const issue of summary.issues) {
      const ids = issue.questionIds.slice(0, MAX_IDS_SHOWN).join(', ') + (issue.questionIds.length > MAX_IDS_SHOWN ? ', …' : '');
      out.push(`  ${issue.code}: ${issue.questionIds.length} (${ids}). ${issue.message}`);
    }
  }
  return out.join('\n');
}
