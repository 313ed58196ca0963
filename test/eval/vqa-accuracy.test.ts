import { describe, expect, it } from 'vitest';
import { normalizeAnswer, processDigitArticle, processPunctuation, stripAnswer, vqaAccuracy } from '../../dist/src/eval/vqa-accuracy.js';

/** Ten human answers: `matches` of them `answer`, the rest different from it and from each other's case. */
function humans(answer: string, matches: number): string[] {
  const others = ['zebra', 'giraffe', 'car', 'tree', 'house', 'river', 'lamp', 'chair', 'kite', 'boat'];
  return [...Array<string>(matches).fill(answer), ...others.slice(0, 10 - matches)];
}

describe('VQAv2 answer normalisation', () => {
  it('should turn newlines and tabs into spaces and strip the ends', () => {
    expect(stripAnswer('  two\tdogs\n')).toBe('two dogs');
  });

  it('should strip with Python whitespace, which includes \\x1c and excludes the BOM', () => {
    expect(stripAnswer('\x1cdog\x85')).toBe('dog');
    expect(stripAnswer('\ufeffdog')).toBe('\ufeffdog');
    expect(processDigitArticle('a\x1cdog')).toBe('dog');
  });

  it('should replace punctuation by a space when it touches no space', () => {
    expect(processPunctuation('black/white')).toBe('black white');
    expect(processPunctuation('t-shirt')).toBe('t shirt');
  });

  it('should delete punctuation that touches a space somewhere in the text', () => {
    // "red , white": the comma has spaces on both sides, so it is deleted and the double space stays until split.
    expect(processPunctuation('red , white')).toBe('red  white');
    expect(normalizeAnswer('red , white')).toBe('red white');
  });

  it('should decide per punctuation mark, on the original text', () => {
    // The comma is followed by a space (deleted); the slash touches none (becomes a space).
    expect(processPunctuation('red, white/blue')).toBe('red white blue');
  });

  it('should delete every punctuation mark when a comma sits between digits', () => {
    expect(processPunctuation('1,000')).toBe('1000');
    // The slash would have become a space, but the digit comma switches every mark to deletion.
    expect(processPunctuation('1,000/2')).toBe('10002');
  });

  it('should keep apostrophes and colons, which the current reference no longer lists', () => {
    expect(normalizeAnswer("man's")).toBe("man's");
    expect(normalizeAnswer('10:30')).toBe('10:30');
  });

  it('should delete periods except before a digit', () => {
    expect(processPunctuation('yes.')).toBe('yes');
    expect(processPunctuation('2.5')).toBe('2.5');
    expect(processPunctuation('5.')).toBe('5');
    expect(processPunctuation('u.s.a.')).toBe('usa');
  });

  it('should delete at most 32 periods, because the reference passes re.UNICODE where sub() takes a count', () => {
    expect(processPunctuation(`${'.'.repeat(40)}x`)).toBe(`${'.'.repeat(8)}x`);
  });

  it('should lower-case and turn number words zero to ten, and none, into digits', () => {
    expect(processDigitArticle('Two')).toBe('2');
    expect(processDigitArticle('TEN')).toBe('10');
    expect(processDigitArticle('none')).toBe('0');
    expect(processDigitArticle('eleven')).toBe('eleven');
    expect(processDigitArticle('twenty two')).toBe('twenty 2');
  });

  it('should drop the articles a, an and the as whole words only', () => {
    expect(processDigitArticle('The  Cat on a mat')).toBe('cat on mat');
    expect(processDigitArticle('another theme')).toBe('another theme');
    // Number words are mapped before the article test, so "a one" is "1".
    expect(processDigitArticle('a one')).toBe('1');
  });

  it('should restore apostrophes in contractions written without them', () => {
    expect(processDigitArticle('dont know')).toBe("don't know");
    expect(processDigitArticle('whats that')).toBe("what's that");
    // Capitalised keys (Im, Ive) never match lower-cased words; one entry maps backwards. Both as in the reference.
    expect(processDigitArticle('Im')).toBe('im');
    expect(processDigitArticle("somebody'd")).toBe('somebodyd');
  });

  it('should chain all rules in normalizeAnswer', () => {
    expect(normalizeAnswer(' A fishing-pole!\n')).toBe('fishing pole');
    expect(normalizeAnswer('Two.')).toBe('2');
  });
});

describe('vqaAccuracy', () => {
  // With m of 10 humans matching, leaving out a matching human leaves m-1 matches (m subsets), leaving out another
  // leaves m (10-m subsets): accuracy = (m * min(1, (m-1)/3) + (10-m) * min(1, m/3)) / 10.
  it('should give 0 when no human agrees', () => {
    expect(vqaAccuracy('fish', humans('fishing pole', 0))).toBe(0);
  });

  it('should give 0.3 when one human agrees: 9 subsets of 1/3, 1 subset of 0', () => {
    expect(vqaAccuracy('fish', humans('fish', 1))).toBeCloseTo(0.3, 12);
  });

  it('should give 0.6 when two humans agree: 2 subsets of 1/3, 8 of 2/3', () => {
    expect(vqaAccuracy('fish', humans('fish', 2))).toBeCloseTo(0.6, 12);
  });

  it('should give 0.9 when three humans agree: 3 subsets of 2/3, 7 of 1', () => {
    expect(vqaAccuracy('fish', humans('fish', 3))).toBeCloseTo(0.9, 12);
  });

  it('should give 1 when four or more humans agree: every subset keeps at least 3 matches', () => {
    expect(vqaAccuracy('fish', humans('fish', 4))).toBe(1);
    expect(vqaAccuracy('fish', humans('fish', 10))).toBe(1);
  });

  it('should normalise prediction and answers when the humans disagree', () => {
    // "Two dogs." -> "2 dogs"; "two dogs" and "the 2 dogs" -> "2 dogs": three matches -> 0.9.
    expect(vqaAccuracy('Two dogs.', ['2 dogs', 'two dogs', 'the 2 dogs', ...humans('x', 0).slice(0, 7)])).toBeCloseTo(0.9, 12);
  });

  it('should compare without normalising when all humans gave the same answer', () => {
    expect(vqaAccuracy('Yes', Array<string>(10).fill('yes'))).toBe(0);
    expect(vqaAccuracy('yes.', Array<string>(10).fill('yes'))).toBe(0);
    // Whitespace is still stripped.
    expect(vqaAccuracy(' yes\n', Array<string>(10).fill('yes'))).toBe(1);
  });

  it('should average over n leave-one-out subsets when there are fewer than ten answers', () => {
    // cat, cat, dog: leaving out a cat leaves 1 match (1/3, twice), leaving out the dog leaves 2 (2/3): 4/9.
    expect(vqaAccuracy('cat', ['cat', 'cat', 'dog'])).toBeCloseTo(4 / 9, 12);
  });

  it('should refuse an empty list of human answers', () => {
    expect(() => vqaAccuracy('cat', [])).toThrow(RangeError);
  });
});
