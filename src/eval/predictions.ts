import { readFile } from 'node:fs/promises';
import { EvalDataError } from './eval-data-error.js';
import type { PredictionRecord, QuestionId } from './types.js';

export interface PredictionsFile {
  /** Every well-formed record, in file order (a question may appear more than once: a failure, then a retry). */
  records: PredictionRecord[];
  /**
   * `jsonl`: this tool's predictions, with a `vqa` and (unless run without an LLM) an `llm` arm;
   * `vqa-results`: the official VQA results format `[{ "question_id", "answer" }]`, one arm named `results`.
   */
  format: 'jsonl' | 'vqa-results';
  /** The last line had no newline and was not JSON: a run stopped while writing it. */
  partialLastLine: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isQuestionId(value: unknown): value is QuestionId {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value !== '');
}

function fromVqaResults(json: unknown[], file: string): PredictionRecord[] {
  return json.map((entry, index) => {
    if (!isRecord(entry) || !isQuestionId(entry.question_id) || typeof entry.answer !== 'string') {
      throw new EvalDataError('invalid_file', `Result ${index} in ${file} is not { "question_id", "answer": string }.`);
    }
    return { questionId: entry.question_id, results: { shortAnswer: entry.answer } } as PredictionRecord;
  });
}

/**
 * Parses the text of a predictions JSONL file. A last line without a newline that is not JSON is the trace of an
 * interrupted write and is reported rather than fatal; any other bad line is an error.
 *
 * @throws {EvalDataError} for a malformed line.
 *
 * @example
 * ```ts
 * parsePredictions('{"questionId": 1, "vqa": {"shortAnswer": "2"}}\n{"questionId": 2, "vq', 'p.jsonl');
 * // { records: [{ questionId: 1, ... }], format: 'jsonl', partialLastLine: true }
 * ```
 */
export function parsePredictions(text: string, file: string): PredictionsFile {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new EvalDataError('invalid_file', `${file} starts like a JSON array but is not valid JSON: ${(error as Error).message}`);
    }
    return { records: fromVqaResults(json as unknown[], file), format: 'vqa-results', partialLastLine: false };
  }
  const lines = text.split('\n');
  const records: PredictionRecord[] = [];
  let partialLastLine = false;
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    const isLast = index === lines.length - 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      if (isLast) {
        partialLastLine = true;
        return;
      }
      throw new EvalDataError('invalid_file', `${file} line ${index + 1} is not JSON: ${(error as Error).message}`);
    }
    if (!isRecord(value) || !isQuestionId(value.questionId)) {
      throw new EvalDataError('invalid_file', `${file} line ${index + 1} is not a prediction record (it needs a "questionId").`, {
        hint: 'Score files written by vqa-llm eval, or VQA results [{"question_id", "answer"}].',
      });
    }
    records.push(value as unknown as PredictionRecord);
  });
  return { records, format: 'jsonl', partialLastLine };
}

/**
 * Reads a predictions file written by `vqa-llm eval` (JSONL), or VQA results JSON (`[{question_id, answer}]`).
 *
 * @throws {EvalDataError} for a malformed file.
 *
 * @example
 * ```ts
 * const { records } = await readPredictions('predictions.jsonl');
 * ```
 */
export async function readPredictions(file: string): Promise<PredictionsFile> {
  return parsePredictions(await readFile(file, 'utf8'), file);
}
