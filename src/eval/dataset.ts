import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { EvalDataError } from './eval-data-error.js';
import { IssueCollector } from './issues.js';
import type { AnswerType, EvalQuestion, QuestionId, ReferenceQuestion, ReferenceSet } from './types.js';
import { normalizeAnswer } from './vqa-accuracy.js';

export interface VqaV2DatasetOptions {
  /** VQAv2 questions file, e.g. `v2_OpenEnded_mscoco_val2014_questions.json`. */
  questionsFile: string;
  /** VQAv2 annotations file, e.g. `v2_mscoco_val2014_annotations.json`. */
  annotationsFile: string;
  /** Folder of the images, e.g. COCO `val2014/`. */
  imagesDir: string;
  /**
   * Image file name with a printf-style `%d` / `%012d` for the image id. Default `COCO_<data_subtype>_%012d.jpg`
   * from the questions file (`COCO_val2014_%012d.jpg` when it names none).
   */
  imagePattern?: string;
}

interface VqaV2Question {
  question_id: QuestionId;
  image_id: number;
  question: string;
}

interface VqaV2Annotation {
  question_id: QuestionId;
  answer_type?: string;
  question_type?: string;
  answers: { answer: string }[];
}

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new EvalDataError('invalid_file', `${what} ${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isQuestionId(value: unknown): value is QuestionId {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value !== '');
}

function duplicateError(ids: QuestionId[], where: string): EvalDataError {
  const shown = ids.slice(0, 5).join(', ');
  return new EvalDataError('duplicate_question_id', `${ids.length} question id(s) appear more than once in ${where} (${shown}${ids.length > 5 ? ', …' : ''}).`, {
    hint: 'Each question id must be unique, or predictions cannot be matched to answers.',
  });
}

function checkUnique(ids: readonly QuestionId[], where: string): void {
  const seen = new Set<string>();
  const duplicates: QuestionId[] = [];
  for (const id of ids) {
    if (seen.has(String(id))) duplicates.push(id);
    seen.add(String(id));
  }
  if (duplicates.length > 0) throw duplicateError(duplicates, where);
}

/**
 * Formats a printf-style image name: `%d`, `%12d` or `%012d` take the image id.
 *
 * @example
 * ```ts
 * formatImageName('COCO_val2014_%012d.jpg', 42); // 'COCO_val2014_000000000042.jpg'
 * ```
 */
export function formatImageName(pattern: string, imageId: number | string): string {
  if (!/%0?\d*d/.test(pattern)) {
    throw new EvalDataError('invalid_file', `The image pattern ${JSON.stringify(pattern)} has no %d for the image id.`, {
      hint: 'Use e.g. --image-pattern COCO_val2014_%012d.jpg.',
    });
  }
  return pattern.replace(/%(0?)(\d*)d/, (_match, zero: string, width: string) => String(imageId).padStart(Number(width || 0), zero ? '0' : ' '));
}

/**
 * The answer type VQAv2 would give a question, for datasets that do not say: `yes/no` when the humans' most
 * common normalised answer is yes or no, `number` when it is a whole number, else `other`.
 *
 * @example
 * ```ts
 * inferAnswerType(['Four', '4', '4 dogs']); // 'number'
 * ```
 */
export function inferAnswerType(answers: readonly string[]): AnswerType {
  const counts = new Map<string, number>();
  for (const answer of answers) {
    const normalized = normalizeAnswer(answer);
    counts.set(normalized, (counts.get(normalized) ?? 0) + 1);
  }
  let common = '';
  let best = 0;
  for (const [answer, count] of counts) {
    if (count > best) [common, best] = [answer, count];
  }
  if (common === 'yes' || common === 'no') return 'yes/no';
  return /^[0-9]+$/.test(common) ? 'number' : 'other';
}

function readAnnotations(json: unknown, file: string): VqaV2Annotation[] {
  const annotations = isRecord(json) ? json.annotations : undefined;
  if (!Array.isArray(annotations)) {
    throw new EvalDataError('invalid_file', `${file} has no "annotations" array; is it a VQAv2 annotations file?`);
  }
  annotations.forEach((annotation: unknown, index) => {
    const valid =
      isRecord(annotation) &&
      isQuestionId(annotation.question_id) &&
      Array.isArray(annotation.answers) &&
      annotation.answers.every((answer) => isRecord(answer) && typeof answer.answer === 'string');
    if (!valid) throw new EvalDataError('invalid_file', `Annotation ${index} in ${file} lacks question_id or answers[].answer.`);
  });
  checkUnique(
    annotations.map((annotation: VqaV2Annotation) => annotation.question_id),
    file,
  );
  return annotations as VqaV2Annotation[];
}

function toReference(annotation: VqaV2Annotation): ReferenceQuestion {
  const answers = annotation.answers.map((answer) => answer.answer);
  return {
    questionId: annotation.question_id,
    answers,
    answerType: annotation.answer_type ?? inferAnswerType(answers),
    ...(annotation.question_type === undefined ? {} : { questionType: annotation.question_type }),
  };
}

/**
 * Reads a VQAv2 questions file, its annotations and an image folder into questions to run. Questions without an
 * annotation (or with no answers) and annotations without a question are left out and counted as issues; a
 * duplicate question id is an error. Whether the images exist is checked when the run starts.
 *
 * @throws {EvalDataError} for a malformed file or duplicate question ids.
 *
 * @example
 * ```ts
 * const dataset = await loadVqaV2Dataset({
 *   questionsFile: 'v2_OpenEnded_mscoco_val2014_questions.json',
 *   annotationsFile: 'v2_mscoco_val2014_annotations.json',
 *   imagesDir: 'val2014',
 * });
 * console.log(dataset.questions.length, dataset.issues);
 * ```
 */
export async function loadVqaV2Dataset(options: VqaV2DatasetOptions): Promise<ReferenceSet<EvalQuestion>> {
  const [questionsJson, annotationsJson] = await Promise.all([
    readJson(options.questionsFile, 'The questions file'),
    readJson(options.annotationsFile, 'The annotations file'),
  ]);
  const rawQuestions = isRecord(questionsJson) ? questionsJson.questions : undefined;
  if (!Array.isArray(rawQuestions)) {
    throw new EvalDataError('invalid_file', `${options.questionsFile} has no "questions" array; is it a VQAv2 questions file?`);
  }
  rawQuestions.forEach((question: unknown, index) => {
    const valid = isRecord(question) && isQuestionId(question.question_id) && isQuestionId(question.image_id) && typeof question.question === 'string';
    if (!valid) throw new EvalDataError('invalid_file', `Question ${index} in ${options.questionsFile} lacks question_id, image_id or question.`);
  });
  const questions = rawQuestions as VqaV2Question[];
  checkUnique(
    questions.map((question) => question.question_id),
    options.questionsFile,
  );
  const annotations = new Map(readAnnotations(annotationsJson, options.annotationsFile).map((annotation) => [String(annotation.question_id), annotation]));

  const subtype = isRecord(questionsJson) && typeof questionsJson.data_subtype === 'string' ? questionsJson.data_subtype : 'val2014';
  const pattern = options.imagePattern ?? `COCO_${subtype}_%012d.jpg`;
  const imagesDir = resolve(options.imagesDir);
  const issues = new IssueCollector();
  const result: EvalQuestion[] = [];
  const asked = new Set<string>();
  for (const question of questions) {
    asked.add(String(question.question_id));
    const annotation = annotations.get(String(question.question_id));
    if (!annotation) {
      issues.add('question_without_annotation', question.question_id, `Questions with no annotation in ${options.annotationsFile} were not run.`);
      continue;
    }
    if (annotation.answers.length === 0) {
      issues.add('question_without_answers', question.question_id, 'Questions whose annotation has no answers were not run.');
      continue;
    }
    result.push({ ...toReference(annotation), question: question.question, image: join(imagesDir, formatImageName(pattern, question.image_id)) });
  }
  for (const [id, annotation] of annotations) {
    if (!asked.has(id)) issues.add('annotation_without_question', annotation.question_id, `Annotations with no question in ${options.questionsFile} were ignored.`);
  }
  return { source: options.questionsFile, questions: result, issues: issues.list() };
}

interface JsonlLine {
  line: number;
  value: Record<string, unknown>;
}

async function readJsonlLines(file: string): Promise<JsonlLine[]> {
  const text = await readFile(file, 'utf8');
  const lines: JsonlLine[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new EvalDataError('invalid_file', `${file} line ${index + 1} is not JSON: ${(error as Error).message}`, { cause: error });
    }
    if (!isRecord(value)) throw new EvalDataError('invalid_file', `${file} line ${index + 1} is not a JSON object.`);
    lines.push({ line: index + 1, value });
  });
  return lines;
}

function readJsonlAnswers(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new EvalDataError('invalid_file', `${where}: answers must be an array.`);
  return value.map((answer: unknown) => {
    if (typeof answer === 'string') return answer;
    if (isRecord(answer) && typeof answer.answer === 'string') return answer.answer;
    throw new EvalDataError('invalid_file', `${where}: each answer must be a string or { "answer": string }.`);
  });
}

/**
 * Reads a JSONL dataset, one `{ image, question, answers[] }` per line, with optional `questionId` (default: the
 * line number), `answerType` (default: inferred as VQAv2 would, see {@link inferAnswerType}) and
 * `questionType`. Image paths are relative to the file. Answers are used as written, like VQAv2's: the metric
 * normalises them when the humans disagree.
 *
 * @throws {EvalDataError} for a line that is not a JSON object of that shape, or duplicate question ids.
 *
 * @example
 * ```ts
 * // questions.jsonl: {"image": "dogs.jpg", "question": "How many dogs are there?", "answers": ["4", "four", ...]}
 * const dataset = await loadJsonlDataset('questions.jsonl');
 * ```
 */
export async function loadJsonlDataset(file: string): Promise<ReferenceSet<EvalQuestion>> {
  const base = dirname(resolve(file));
  const issues = new IssueCollector();
  const questions: EvalQuestion[] = [];
  const lines = await readJsonlLines(file);
  for (const { line, value } of lines) {
    const where = `${file} line ${line}`;
    if (typeof value.image !== 'string' || value.image === '') throw new EvalDataError('invalid_file', `${where}: "image" must be a file path.`);
    if (typeof value.question !== 'string') throw new EvalDataError('invalid_file', `${where}: "question" must be a string.`);
    if (value.questionId !== undefined && !isQuestionId(value.questionId)) throw new EvalDataError('invalid_file', `${where}: "questionId" must be a number or string.`);
    const questionId = (value.questionId as QuestionId | undefined) ?? line;
    const answers = readJsonlAnswers(value.answers, where);
    if (!answers || answers.length === 0) {
      issues.add('question_without_answers', questionId, `Lines of ${file} without answers were not run.`);
      continue;
    }
    questions.push({
      questionId,
      question: value.question,
      image: isAbsolute(value.image) ? value.image : join(base, value.image),
      answers,
      answerType: typeof value.answerType === 'string' ? value.answerType : inferAnswerType(answers),
      ...(typeof value.questionType === 'string' ? { questionType: value.questionType } : {}),
    });
  }
  checkUnique(
    lines.map(({ line, value }) => (value.questionId as QuestionId | undefined) ?? line),
    file,
  );
  return { source: file, questions, issues: issues.list() };
}

/**
 * Reads the human answers to score against: a VQAv2 annotations file (`.json`) or a JSONL dataset (`.jsonl`).
 *
 * @throws {EvalDataError} for a malformed file or duplicate question ids.
 *
 * @example
 * ```ts
 * const reference = await loadReferenceAnswers('v2_mscoco_val2014_annotations.json');
 * ```
 */
export async function loadReferenceAnswers(file: string): Promise<ReferenceSet> {
  if (file.endsWith('.jsonl')) return loadJsonlDataset(file);
  const issues = new IssueCollector();
  const questions: ReferenceQuestion[] = [];
  for (const annotation of readAnnotations(await readJson(file, 'The annotations file'), file)) {
    if (annotation.answers.length === 0) issues.add('question_without_answers', annotation.question_id, 'Annotations with no answers were not scored.');
    else questions.push(toReference(annotation));
  }
  return { source: file, questions, issues: issues.list() };
}
