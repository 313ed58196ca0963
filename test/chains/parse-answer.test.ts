import { describe, expect, it } from 'vitest';
import { parseAnswerReply } from '../../dist/chains/parse-answer.js';
import { matchCandidate, normalizeAnswer } from '../../dist/chains/match-candidate.js';
import { fallbackAnswer } from '../../dist/chains/fallback.js';

const value = { shortAnswer: '2', answer: 'There are two people.' };

describe('parseAnswerReply', () => {
  it.each([
    ['bare JSON', JSON.stringify(value)],
    ['a code fence', `\`\`\`json\n${JSON.stringify(value)}\n\`\`\``],
    ['prose around it', `Here is the answer: ${JSON.stringify(value)} Let me know!`],
    ['snake_case keys', '{"short_answer": "2", "answer": "There are two people."}'],
    ['braces inside strings', '{"shortAnswer": "2", "answer": "There are two people."} and {not json}'],
    ['a wrapper object', `{"result": ${JSON.stringify(value)}}`],
  ])('should read %s', (_name, text) => {
    expect(parseAnswerReply(text)).toEqual({ ok: true, value });
  });

  it('should keep braces that are inside JSON strings', () => {
    expect(parseAnswerReply('{"shortAnswer": "{x}", "answer": "It says {x}."}')).toEqual({ ok: true, value: { shortAnswer: '{x}', answer: 'It says {x}.' } });
  });

  it.each([
    ['', 'llm_empty'],
    ['   \n', 'llm_empty'],
    ['There are two people.', 'llm_malformed'],
    ['{"shortAnswer": 2, "answer": "Two."}', 'llm_malformed'],
    ['{"shortAnswer": "2", "answer": "Two', 'llm_malformed'],
    ['[1, 2]', 'llm_malformed'],
  ])('should refuse %j as %s', (text, code) => {
    expect(parseAnswerReply(text)).toMatchObject({ ok: false, code });
  });
});

describe('normalizeAnswer', () => {
  it.each([
    ['Two.', '2'],
    ['A fishing pole', 'fishing pole'],
    ['The  Red   Umbrella!', 'red umbrella'],
    ["man's hat", 'man s hat'],
  ])('should normalise %j to %j', (input, expected) => {
    expect(normalizeAnswer(input)).toBe(expected);
  });
});

describe('matchCandidate', () => {
  const candidates = [
    { answer: '3', score: 0.5 },
    { answer: '2', score: 0.3 },
  ];

  it('should match number words to digits', () => {
    expect(matchCandidate('two', candidates)).toEqual({ index: 1, answer: '2' });
  });

  it('should match nothing for an answer outside the candidates or an empty one', () => {
    expect(matchCandidate('five', candidates)).toBeUndefined();
    expect(matchCandidate('the', candidates)).toBeUndefined();
  });
});

describe('fallbackAnswer', () => {
  it('should make a sentence of the top candidate', () => {
    expect(fallbackAnswer([{ answer: 'fishing pole', score: 0.5 }])).toEqual({ shortAnswer: 'fishing pole', answer: 'Fishing pole.' });
    expect(fallbackAnswer([{ answer: 'yes', score: 0.9 }])).toEqual({ shortAnswer: 'yes', answer: 'Yes.' });
  });
});
