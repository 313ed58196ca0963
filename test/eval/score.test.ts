import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSummary } from '../../dist/src/eval/format-summary.js';
import { summarizeEval } from '../../dist/src/eval/summary.js';
import type { PredictionRecord, ReferenceSet } from '../../dist/src/eval/types.js';
import { root } from '../helpers/fixtures.js';

const run = promisify(execFile);
const cli = join(root, 'bin', 'vqa-llm.js');

async function vqaLlm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const repeat = (answer: string, times: number): string[] => Array<string>(times).fill(answer);

// Seven questions whose accuracies are worked out by hand in the comments of the records below.
const reference: ReferenceSet = {
  source: 'crafted',
  issues: [],
  questions: [
    { questionId: 1, answerType: 'number', answers: ['2', '2', '2', 'two', ...repeat('3', 6)] },
    { questionId: 2, answerType: 'yes/no', answers: repeat('yes', 10) },
    { questionId: 3, answerType: 'other', answers: [...repeat('fishing pole', 3), 'fishing rod', 'fishing rod', 'pole', ...repeat('rod', 4)] },
    { questionId: 4, answerType: 'other', answers: ['red', 'red', ...repeat('blue', 8)] },
    { questionId: 5, answerType: 'other', answers: repeat('cat', 10) },
    { questionId: 6, answerType: 'other', answers: repeat('dog', 10) },
    { questionId: 7, answerType: 'other', answers: repeat('red', 10) },
  ],
};

const llm = (shortAnswer: string, answer: string) => ({ shortAnswer, answer, source: 'llm' as const });

const records: PredictionRecord[] = [
  // Superseded by the second record for question 1 (reported as a duplicate).
  { questionId: 1, vqa: { shortAnswer: 'zebra' }, llm: llm('zebra', 'A zebra.'), timings: { total: 999 } },
  // "3": 6 humans -> 1. "2": "two" normalises to "2" (the humans disagree, so normalisation applies): 4 -> 1. Changed, no difference.
  { questionId: 1, vqa: { shortAnswer: '3' }, llm: llm('2', 'There are two dogs.'), timings: { total: 100 } },
  // Unanimous humans: no normalisation, so "Yes" scores 0 against ten "yes". Not a change (same after normalising).
  { questionId: 2, vqa: { shortAnswer: 'yes' }, llm: llm('Yes', 'Yes, they are.'), timings: { total: 200 } },
  // "fish": 0. "fishing pole": 3 humans -> 0.9. Helped.
  { questionId: 3, vqa: { shortAnswer: 'fish' }, llm: llm('fishing pole', 'He holds a fishing pole.'), timings: { total: 300 } },
  // "blue": 8 -> 1. "red": 2 -> 0.6. Hurt.
  { questionId: 4, vqa: { shortAnswer: 'blue' }, llm: llm('red', 'red'), timings: { total: 400 } },
  // Question 5 has no prediction; question 6 failed.
  { questionId: 6, error: { name: 'InvalidImageError', message: 'not an image' } },
  // A fallback: the VQA answer, 1 in both arms.
  {
    questionId: 7,
    vqa: { shortAnswer: 'red' },
    llm: { shortAnswer: 'red', answer: 'Red.', source: 'vqa', fallbackReason: { code: 'llm_malformed', message: 'no JSON' } },
    timings: { total: 500 },
  },
  // Not in the reference.
  { questionId: 99, vqa: { shortAnswer: 'x' } },
];

describe('summarizeEval', () => {
  const summary = summarizeEval({ reference, records });

  it('should score each arm with the VQAv2 metric over the questions that have a prediction', () => {
    expect(summary.questions).toBe(7);
    expect(summary.predicted).toBe(5);
    const [vqa, withLlm] = summary.arms;
    // VQA only: 1 + 1 + 0 + 1 + 1 over 5. VQA+LLM: 1 + 0 + 0.9 + 0.6 + 1 over 5.
    expect(vqa!.label).toBe('VQA only');
    expect(vqa!.accuracy).toBeCloseTo(0.8, 12);
    expect(withLlm!.label).toBe('VQA+LLM');
    expect(withLlm!.accuracy).toBeCloseTo(0.7, 12);
  });

  it('should break accuracy down by answer type, yes/no then number then other', () => {
    const withLlm = summary.arms[1]!;
    expect(Object.keys(withLlm.byAnswerType)).toEqual(['yes/no', 'number', 'other']);
    expect(withLlm.byAnswerType['number']).toEqual({ count: 1, accuracy: 1 });
    expect(withLlm.byAnswerType['yes/no']).toEqual({ count: 1, accuracy: 0 });
    // (0.9 + 0.6 + 1) / 3
    expect(withLlm.byAnswerType['other']!.accuracy).toBeCloseTo(2.5 / 3, 12);
    expect(summary.arms[0]!.byAnswerType['other']!.accuracy).toBeCloseTo(2 / 3, 12);
  });

  it('should count the answers the LLM changed, and whether that helped or hurt', () => {
    // Gains per question: 0, -1, +0.9, -0.4, 0 -> mean -0.1.
    expect(summary.llmEffect).toMatchObject({ compared: 5, changed: 3, helped: 1, hurt: 1, neutral: 1 });
    expect(summary.llmEffect!.meanGain).toBeCloseTo(-0.1, 12);
  });

  it('should point out answers that miss only because unanimous answers are compared without normalisation', () => {
    expect(summary.arms[1]!.unnormalizedMisses).toBe(1);
    expect(summary.arms[0]!.unnormalizedMisses).toBe(0);
  });

  it('should count fallbacks by reason', () => {
    expect(summary.fallbacks).toEqual({ total: 1, byReason: { llm_malformed: 1 } });
  });

  it('should describe the length and form of the sentences', () => {
    // Words: 4, 3, 5, 1, 1. Full sentences: the first three ("red" and "Red." are too short).
    expect(summary.answerForm).toEqual({ count: 5, meanWords: 2.8, medianWords: 3, fullSentenceShare: 0.6, containsShortAnswerShare: 1 });
  });

  it('should give nearest-rank latency percentiles per stage', () => {
    expect(summary.latency.total).toEqual({ count: 5, mean: 300, p50: 300, p90: 500, p99: 500, max: 500 });
  });

  it('should list missing, failed, unknown and duplicate predictions as issues with their question ids', () => {
    const byCode = Object.fromEntries(summary.issues.map((issue) => [issue.code, issue.questionIds]));
    expect(byCode).toEqual({ unknown_question_id: [99], duplicate_prediction: [1], missing_prediction: [5], failed_question: [6] });
  });

  it('should print the numbers in the text table', () => {
    const text = formatSummary(summary);
    expect(text).toContain('5 of 7 questions scored');
    expect(text).toMatch(/overall\s+80\.00 \(5\)\s+70\.00 \(5\)/);
    expect(text).toContain('LLM changed 3 of 5 answers (60.0%): helped 1, hurt 1, no difference 1; mean gain -10.00 points');
    expect(text).toContain('LLM fallbacks: 1 of 5 (20.0%): llm_malformed 1');
    expect(text).toContain('missing_prediction: 1 (5)');
  });

  it('should prefer a later success over an earlier failure without calling it a duplicate', () => {
    const retried = summarizeEval({
      reference,
      records: [
        { questionId: 5, error: { name: 'Error', message: 'boom' } },
        { questionId: 5, vqa: { shortAnswer: 'cat' } },
      ],
    });
    expect(retried.arms[0]).toMatchObject({ count: 1, accuracy: 1 });
    expect(retried.issues.map((issue) => issue.code)).toEqual(['missing_prediction']);
  });

  it('should refuse predictions whose question ids are all unknown: another dataset', () => {
    expect(() => summarizeEval({ reference, records: [{ questionId: 1001, vqa: { shortAnswer: 'x' } }] })).toThrow(/another dataset/);
  });
});

describe('vqa-llm eval score', () => {
  let scratch: string;
  let annotations: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-score-'));
    annotations = join(scratch, 'annotations.json');
    const toAnnotation = (question: ReferenceSet['questions'][number]) => ({
      question_id: question.questionId,
      image_id: 1,
      answer_type: question.answerType,
      question_type: 'what',
      answers: question.answers.map((answer, index) => ({ answer, answer_confidence: 'yes', answer_id: index + 1 })),
    });
    await writeFile(annotations, JSON.stringify({ annotations: reference.questions.map(toAnnotation) }));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('should reproduce the hand-computed accuracies from a predictions JSONL', async () => {
    const predictions = join(scratch, 'predictions.jsonl');
    await writeFile(predictions, records.map((record) => JSON.stringify(record)).join('\n') + '\n');
    const { code, stdout } = await vqaLlm('eval', 'score', '--predictions', predictions, '--annotations', annotations, '--json');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { arms: { name: string; accuracy: number }[]; predicted: number };
    expect(summary.predicted).toBe(5);
    expect(summary.arms.map((arm) => arm.name)).toEqual(['vqa', 'llm']);
    expect(summary.arms[0]!.accuracy).toBeCloseTo(0.8, 12);
    expect(summary.arms[1]!.accuracy).toBeCloseTo(0.7, 12);
  });

  it('should score official VQA results JSON, and exit 1 under --strict when questions are missing', async () => {
    const results = join(scratch, 'results.json');
    // 1 ("two" -> 1), 0.9 ("fishing pole"), 0.6 ("red" with 2 humans): mean 2.5 / 3.
    await writeFile(
      results,
      JSON.stringify([
        { question_id: 1, answer: 'two' },
        { question_id: 3, answer: 'fishing pole' },
        { question_id: 4, answer: 'red' },
      ]),
    );
    const { code, stdout } = await vqaLlm('eval', 'score', '--predictions', results, '--annotations', annotations);
    expect(code).toBe(0);
    expect(stdout).toMatch(/overall\s+83\.33 \(3\)/);
    expect(stdout).toContain('warning: 4 questions have no usable prediction');
    const strict = await vqaLlm('eval', 'score', '--predictions', results, '--annotations', annotations, '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain('missing_prediction');
  });

  it('should exit 1 naming the mismatch when the predictions are for another dataset', async () => {
    const other = join(scratch, 'other.json');
    await writeFile(other, JSON.stringify([{ question_id: 5000, answer: 'yes' }]));
    const { code, stderr, stdout } = await vqaLlm('eval', 'score', '--predictions', other, '--annotations', annotations);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error: .*another dataset/);
  });

  it('should exit 1 on duplicate question ids in the annotations', async () => {
    const duplicated = join(scratch, 'duplicated.json');
    const one = { question_id: 7, answers: [{ answer: 'red' }] };
    await writeFile(duplicated, JSON.stringify({ annotations: [one, one] }));
    const { code, stderr } = await vqaLlm('eval', 'score', '--predictions', join(scratch, 'other.json'), '--annotations', duplicated);
    expect(code).toBe(1);
    expect(stderr).toContain('appear more than once');
  });
});
