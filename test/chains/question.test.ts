import { describe, expect, it } from 'vitest';
import { InvalidOptionError, InvalidQuestionError } from '../../dist/src/errors/index.js';
import { validateQuestion } from '../../dist/src/question.js';

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return InvalidQuestionError.isInstance(error) ? error.reason : `not an InvalidQuestionError: ${String(error)}`;
  }
  return undefined;
}

describe('validateQuestion', () => {
  it('should normalise whitespace and Unicode', () => {
    expect(validateQuestion("  What is in\nthe man's\thand?  ")).toBe("What is in the man's hand?");
    expect(validateQuestion('Cafe\u0301?')).toBe('Café?');
  });

  it('should refuse empty, whitespace and non-string questions', () => {
    expect(reasonOf(() => validateQuestion(''))).toBe('empty');
    expect(reasonOf(() => validateQuestion(' \n\t\u00A0'))).toBe('empty');
    expect(reasonOf(() => validateQuestion(undefined))).toBe('empty');
  });

  it('should refuse a 100,000-character question, naming the limit', () => {
    expect(reasonOf(() => validateQuestion('a'.repeat(100_000)))).toBe('too_long');
    expect(() => validateQuestion('a'.repeat(100_000))).toThrow('the limit is 1000');
  });

  it('should count characters as a person would', () => {
    expect(validateQuestion('🐕'.repeat(10), { maxLength: 10 })).toBe('🐕'.repeat(10));
  });

  it('should refuse control and bidirectional-override characters, naming them', () => {
    expect(reasonOf(() => validateQuestion('What\u0007?'))).toBe('control_characters');
    expect(reasonOf(() => validateQuestion('What\u009B?'))).toBe('control_characters');
    expect(reasonOf(() => validateQuestion('abc\u2066def'))).toBe('control_characters');
    expect(() => validateQuestion('What\u0000?')).toThrow('U+0000');
  });

  it('should refuse a bad limit', () => {
    expect(() => validateQuestion('q', { maxLength: 0 })).toThrow(InvalidOptionError);
  });
});
