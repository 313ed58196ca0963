import { EvalDataError } from './eval-data-error.js';
import { IssueCollector } from './issues.js';
import type { ArmName, EvalIssue, PredictionRecord, ReferenceQuestion, ReferenceSet, StageLatencies } from './types.js';
import { normalizeAnswer, stripAnswer, vqaAccuracy } from './vqa-accuracy.js';

export const ARM_LABELS: Readonly<Record<ArmName, string>> = { vqa: 'VQA only', llm: 'VQA+LLM', results: 'results' };

/** Stages whose latency the summary reports, in pipeline order. */
export const LATENCY_STAGES = ['prepare', 'caption', 'candidates', 'vision', 'llm', 'total'] as const;

export interface AccuracyGroup {
  count: number;
  /** Mean VQAv2 accuracy in [0, 1]. */
  accuracy: number;
}

export interface ArmSummary extends AccuracyGroup {
  name: ArmName;
  label: string;
  /** Per answer type (`yes/no`, `number`, `other`), in that order when present. */
  byAnswerType: Record<string, AccuracyGroup>;
  /**
   * Predictions that scored 0 although they equal the humans' answer after normalisation: the reference metric
   * does not normalise when all humans gave the same answer, so `"Yes"` misses ten `"yes"`.
   */
  unnormalizedMisses: number;
}

export interface LlmEffect {
  /** Questions with both arms. */
  compared: number;
  /** Questions where the two short answers differ after normalisation. */
  changed: number;
  /** Changed, and the VQA+LLM arm scored higher / lower / the same. */
  helped: number;
  hurt: number;
  neutral: number;
  /** Mean of (VQA+LLM accuracy - VQA-only accuracy) over the compared questions, in [-1, 1]. */
  meanGain: number;
}

export interface AnswerForm {
  count: number;
  meanWords: number;
  medianWords: number;
  /** Share that start with a capital letter or digit, end in . ! or ?, and have at least three words. */
  fullSentenceShare: number;
  /** Share whose words contain the short answer's (after normalisation): the sentence says what was scored. */
  containsShortAnswerShare: number;
}

export interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface EvalSummary {
  /** Where the human answers came from. */
  source: string;
  /** Questions with human answers. */
  questions: number;
  /** Of those, how many have a usable prediction. */
  predicted: number;
  arms: ArmSummary[];
  /** Present when both the VQA-only and the VQA+LLM arm are in the predictions. */
  llmEffect?: LlmEffect;
  /** How often the VQA+LLM arm fell back to the VQA model, by reason code. */
  fallbacks?: { total: number; byReason: Record<string, number> };
  /** Length and form of the VQA+LLM arm's sentence (`answer`), which the metric does not score. */
  answerForm?: AnswerForm;
  /** Milliseconds per stage over the predicted questions (those with timings). */
  latency: Partial<Record<(typeof LATENCY_STAGES)[number], LatencyStats>>;
  /** Everything that kept a question out of the accuracy, or that looked wrong; each with its question ids. */
  issues: EvalIssue[];
}

const ANSWER_TYPE_ORDER = ['yes/no', 'number', 'other'];

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/** Nearest-rank percentile: always a value that was measured. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

function latencyStats(values: number[]): LatencyStats {
  const sorted = [...values].sort((left, right) => left - right);
  return { count: sorted.length, mean: mean(sorted), p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
}

function words(text: string): string[] {
  return text.trim().split(/\s+/u).filter((word) => word !== '');
}

function isFullSentence(text: string): boolean {
  const trimmed = text.trim();
  return /^[\p{Lu}\p{Nd}"'“]/u.test(trimmed) && /[.!?]["'”)]?$/u.test(trimmed) && words(trimmed).length >= 3;
}

function containsShortAnswer(answer: string, shortAnswer: string): boolean {
  const needle = normalizeAnswer(shortAnswer);
  if (needle === '') return false;
  return ` ${normalizeAnswer(answer)} `.includes(` ${needle} `);
}

/** Whether a prediction is wrong only because the reference skips normalisation when all humans agree. */
function isUnnormalizedMiss(prediction: string, reference: ReferenceQuestion, accuracy: number): boolean {
  if (accuracy > 0) return false;
  const stripped = reference.answers.map(stripAnswer);
  return new Set(stripped).size === 1 && normalizeAnswer(prediction) === normalizeAnswer(stripped[0]!);
}

function hasArm(record: PredictionRecord, arm: ArmName): boolean {
  return typeof record[arm]?.shortAnswer === 'string';
}

/**
 * Picks one record per question: a successful record supersedes a failed one (a resumed run retries failures);
 * of two successful records the later wins, and the duplicate is reported.
 */
function pickRecords(records: readonly PredictionRecord[], reference: Map<string, ReferenceQuestion>, issues: IssueCollector): Map<string, PredictionRecord> {
  const chosen = new Map<string, PredictionRecord>();
  for (const record of records) {
    const key = String(record.questionId);
    if (!reference.has(key)) {
      issues.add('unknown_question_id', record.questionId, 'Predictions for question ids that are not in the reference answers were ignored.');
      continue;
    }
    const previous = chosen.get(key);
    if (previous && !previous.error && !record.error) {
      issues.add('duplicate_prediction', record.questionId, 'Questions predicted more than once; the last prediction was scored.');
    }
    if (!previous || previous.error || !record.error) chosen.set(key, record);
  }
  return chosen;
}

/**
 * Scores predictions against human answers with the VQAv2 metric, per arm, overall and by answer type, and
 * summarises the LLM's effect, its fallbacks, the form of its sentences and the latency per stage.
 *
 * Questions without a usable prediction are left out of the accuracy and listed in `issues`
 * (`missing_prediction`, `failed_question`), so `predicted` / `questions` says what the accuracy covers.
 *
 * @throws {EvalDataError} `dataset_mismatch` when no prediction's question id is in the reference (the files
 * belong to different datasets); `empty` when the reference has no questions.
 *
 * @example
 * ```ts
 * const reference = await loadReferenceAnswers('annotations.json');
 * const { records } = await readPredictions('predictions.jsonl');
 * const summary = summarizeEval({ reference, records });
 * console.log(formatSummary(summary));
 * ```
 */
export function summarizeEval(input: { reference: ReferenceSet; records: readonly PredictionRecord[]; issues?: readonly EvalIssue[] }): EvalSummary {
  const { reference, records } = input;
  if (reference.questions.length === 0) throw new EvalDataError('empty', `${reference.source} has no questions with answers to score against.`);
  const byId = new Map(reference.questions.map((question) => [String(question.questionId), question]));
  const issues = new IssueCollector([...reference.issues, ...(input.issues ?? [])]);
  const chosen = pickRecords(records, byId, issues);
  if (records.length > 0 && chosen.size === 0) {
    throw new EvalDataError('dataset_mismatch', `None of the ${records.length} predictions' question ids are in ${reference.source}: the predictions are for another dataset.`, {
      hint: 'Pass the annotations the predictions were made for.',
    });
  }

  const arms = (['vqa', 'llm', 'results'] as const).filter((arm) => [...chosen.values()].some((record) => hasArm(record, arm)));
  const scores = new Map<ArmName, { question: ReferenceQuestion; accuracy: number; prediction: string }[]>(arms.map((arm) => [arm, []]));
  const perQuestion = new Map<string, Partial<Record<ArmName, number>>>();
  const latencies = new Map<string, number[]>();
  let predicted = 0;

  for (const question of reference.questions) {
    const key = String(question.questionId);
    const record = chosen.get(key);
    if (!record) {
      issues.add('missing_prediction', question.questionId, 'Questions with no prediction were left out of the accuracy.');
      continue;
    }
    if (record.error) {
      issues.add('failed_question', question.questionId, `Questions that failed were left out of the accuracy (first: ${record.error.message})`);
      continue;
    }
    predicted += 1;
    const accuracies: Partial<Record<ArmName, number>> = {};
    for (const arm of arms) {
      const prediction = record[arm]?.shortAnswer;
      if (typeof prediction !== 'string') continue;
      const accuracy = vqaAccuracy(prediction, question.answers);
      accuracies[arm] = accuracy;
      scores.get(arm)!.push({ question, accuracy, prediction });
    }
    perQuestion.set(key, accuracies);
    for (const stage of LATENCY_STAGES) {
      const value = (record.timings as StageLatencies | undefined)?.[stage];
      if (typeof value === 'number' && Number.isFinite(value)) latencies.set(stage, [...(latencies.get(stage) ?? []), value]);
    }
  }
  const summary: EvalSummary = {
    source: reference.source,
    questions: reference.questions.length,
    predicted,
    arms: arms.map((arm) => summarizeArm(arm, scores.get(arm)!)),
    latency: Object.fromEntries([...latencies].map(([stage, values]) => [stage, latencyStats(values)])),
    issues: [],
  };

  if (arms.includes('llm')) {
    const llmRecords = [...chosen.values()].filter((record) => !record.error && byId.has(String(record.questionId)) && record.llm);
    if (arms.includes('vqa')) summary.llmEffect = summarizeEffect(llmRecords, perQuestion);
    const byReason: Record<string, number> = {};
    for (const record of llmRecords) {
      if (record.llm!.source !== 'vqa') continue;
      const code = record.llm!.fallbackReason?.code ?? 'unknown';
      byReason[code] = (byReason[code] ?? 0) + 1;
    }
    summary.fallbacks = { total: Object.values(byReason).reduce((sum, count) => sum + count, 0), byReason };
    summary.answerForm = summarizeForm(llmRecords);
  }
  summary.issues = issues.list();
  return summary;
}

function summarizeArm(arm: ArmName, scored: { question: ReferenceQuestion; accuracy: number; prediction: string }[]): ArmSummary {
  const groups = new Map<string, number[]>();
  for (const { question, accuracy } of scored) groups.set(question.answerType, [...(groups.get(question.answerType) ?? []), accuracy]);
  const types = [...groups.keys()].sort((left, right) => {
    const rank = (type: string): number => (ANSWER_TYPE_ORDER.includes(type) ? ANSWER_TYPE_ORDER.indexOf(type) : ANSWER_TYPE_ORDER.length);
    return rank(left) - rank(right) || left.localeCompare(right);
  });
  return {
    name: arm,
    label: ARM_LABELS[arm],
    count: scored.length,
    accuracy: mean(scored.map((entry) => entry.accuracy)),
    byAnswerType: Object.fromEntries(types.map((type) => [type, { count: groups.get(type)!.length, accuracy: mean(groups.get(type)!) }])),
    unnormalizedMisses: scored.filter((entry) => isUnnormalizedMiss(entry.prediction, entry.question, entry.accuracy)).length,
  };
}

function summarizeEffect(records: PredictionRecord[], perQuestion: Map<string, Partial<Record<ArmName, number>>>): LlmEffect {
  const effect: LlmEffect = { compared: 0, changed: 0, helped: 0, hurt: 0, neutral: 0, meanGain: 0 };
  let gain = 0;
  for (const record of records) {
    const accuracies = perQuestion.get(String(record.questionId));
    if (!record.vqa || accuracies?.vqa === undefined || accuracies.llm === undefined) continue;
    effect.compared += 1;
    gain += accuracies.llm - accuracies.vqa;
    if (normalizeAnswer(record.vqa.shortAnswer) === normalizeAnswer(record.llm!.shortAnswer)) continue;
    effect.changed += 1;
    if (accuracies.llm > accuracies.vqa) effect.helped += 1;
    else if (accuracies.llm < accuracies.vqa) effect.hurt += 1;
    else effect.neutral += 1;
  }
  effect.meanGain = effect.compared === 0 ? 0 : gain / effect.compared;
  return effect;
}

function summarizeForm(records: PredictionRecord[]): AnswerForm | undefined {
  const answers = records.filter((record) => typeof record.llm?.answer === 'string').map((record) => record.llm!);
  if (answers.length === 0) return undefined;
  const counts = answers.map((answer) => words(answer.answer).length).sort((left, right) => left - right);
  return {
    count: answers.length,
    meanWords: mean(counts),
    medianWords: percentile(counts, 50),
    fullSentenceShare: answers.filter((answer) => isFullSentence(answer.answer)).length / answers.length,
    containsShortAnswerShare: answers.filter((answer) => containsShortAnswer(answer.answer, answer.shortAnswer)).length / answers.length,
  };
}
