import { InvalidOptionError, InvalidQuestionError } from './errors/index.js';

/** Longest question accepted by default, in characters (code points) after trimming. */
export const DEFAULT_MAX_QUESTION_LENGTH = 1000;

export interface QuestionLimits {
  /** Longest accepted question in characters (code points), counted after trimming. Default 1000. */
  maxLength?: number;
}

// C0 and C1 controls other than tab, line feed and carriage return, plus the bidirectional overrides and
// isolates: invisible text-direction tricks ("Trojan Source") that make a prompt read differently than it runs.
const FORBIDDEN_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/u;

/**
 * Checks a question before any model work and returns it normalised (NFC, runs of whitespace collapsed to one
 * space, trimmed), so that the VQA model and the prompt see the same text.
 *
 * @throws {InvalidQuestionError} `empty` for an empty or whitespace-only question, `too_long` past
 *   `limits.maxLength`, `control_characters` for control or bidirectional-override characters.
 * @throws {InvalidOptionError} when `limits.maxLength` is not a positive integer.
 *
 * @example
 * ```ts
 * validateQuestion("  What is in the man's hand?\n"); // "What is in the man's hand?"
 * validateQuestion('   '); // throws InvalidQuestionError (reason 'empty')
 * ```
 */
export function validateQuestion(question: unknown, limits: QuestionLimits = {}): string {
  const maxLength = limits.maxLength ?? DEFAULT_MAX_QUESTION_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new InvalidOptionError('invalid_value', `maxQuestionLength must be a positive integer, got ${String(maxLength)}.`);
  }
  if (typeof question !== 'string') {
    throw new InvalidQuestionError('empty', `The question must be a string, got ${question === null ? 'null' : typeof question}.`);
  }
  const forbidden = FORBIDDEN_CHARACTERS.exec(question);
  if (forbidden) {
    const codePoint = forbidden[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new InvalidQuestionError(
      'control_characters',
      `The question contains the control character U+${codePoint} at position ${forbidden.index}.`,
      { hint: 'Remove control and text-direction characters from the question.' },
    );
  }
  const normalized = question.normalize('NFC').replace(/\s+/gu, ' ').trim();
  if (normalized.length === 0) {
    throw new InvalidQuestionError('empty', 'The question is empty.', { hint: 'Ask a question about the image.' });
  }
  // Length counts code points so that an emoji counts as one character, as a person would count it.
  const length = [...normalized].length;
  if (length > maxLength) {
    throw new InvalidQuestionError('too_long', `The question is ${length} characters long; the limit is ${maxLength}.`, {
      hint: 'Shorten the question or raise maxQuestionLength.',
    });
  }
  return normalized;
}
