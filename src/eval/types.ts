// Shapes shared by the evaluation modules: reference answers, predictions, issues and the summary.
import type { Candidate } from '../types.js';

/** A question id as the dataset spells it (VQAv2 uses integers). Maps key it by `String(id)`. */
export type QuestionId = number | string;

/** VQAv2's answer types; other datasets may use their own strings. */
export type AnswerType = 'yes/no' | 'number' | 'other' | (string & {});

/** What the metric needs about one question. */
export interface ReferenceQuestion {
  questionId: QuestionId;
  /** The human answers, as released (ten in VQAv2). */
  answers: string[];
  answerType: AnswerType;
  questionType?: string;
}

/** A question to run: the reference plus the image and the text. */
export interface EvalQuestion extends ReferenceQuestion {
  question: string;
  /** Absolute path of the image file. */
  image: string;
}

/**
 * Something wrong with the input that the evaluation worked around; each is counted in the summary, so an
 * accuracy never silently covers fewer questions than it seems to.
 */
export type EvalIssueCode =
  | 'missing_image'
  | 'question_without_annotation'
  | 'annotation_without_question'
  | 'question_without_answers'
  | 'unknown_question_id'
  | 'duplicate_prediction'
  | 'missing_prediction'
  | 'failed_question'
  | 'partial_line';

export interface EvalIssue {
  code: EvalIssueCode;
  message: string;
  /** The questions concerned (all of them; the text report shows the first few). */
  questionIds: QuestionId[];
}

export interface ReferenceSet<Question extends ReferenceQuestion = ReferenceQuestion> {
  /** File the answers came from, for messages. */
  source: string;
  questions: Question[];
  issues: EvalIssue[];
}

/** One arm's prediction for one question. */
export interface ArmPrediction {
  shortAnswer: string;
}

/** The VQA+LLM arm's prediction: the chain's result, trimmed to what evaluation needs. */
export interface LlmArmPrediction extends ArmPrediction {
  /** The sentence for a person. */
  answer: string;
  source: 'llm' | 'vqa';
  fallbackReason?: { code: string; message: string };
}

/** Wall-clock milliseconds per stage, as the chain measured them. */
export type StageLatencies = Partial<Record<'prepare' | 'caption' | 'candidates' | 'vision' | 'llm' | 'total', number>>;

/**
 * One line of a predictions file. `vqa` is the VQA model's top candidate (the "VQA only" arm); `llm` the chain's
 * answer (the "VQA+LLM" arm), absent when the run had no LLM. A failed question has `error` and no arms.
 */
export interface PredictionRecord {
  questionId: QuestionId;
  question?: string;
  image?: string;
  answerType?: AnswerType;
  vqa?: ArmPrediction & { score?: number };
  llm?: LlmArmPrediction;
  /** The only arm of a VQA results file (`[{question_id, answer}]`) being scored. */
  results?: ArmPrediction;
  caption?: string;
  candidates?: Candidate[];
  timings?: StageLatencies;
  models?: { caption: string; vqa: string; llm: string | null; prompt: string };
  error?: { name: string; code?: string; message: string };
}

export type ArmName = 'vqa' | 'llm' | 'results';
