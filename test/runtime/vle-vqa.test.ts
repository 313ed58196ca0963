import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { InvalidOptionError, InvalidQuestionError } from '../../dist/src/errors/index.js';
import { fixtureImage, readReference, tinyVle, toTensor, type VleReference } from '../helpers/fixtures.js';

const reference = readReference<VleReference>('tiny-vle');

describe('VleVqa on tiny-vle', () => {
  let vqa: VleVqa;

  beforeAll(async () => {
    vqa = await VleVqa.load(tinyVle, { workers: 1 });
  });

  afterAll(async () => {
    await vqa.dispose();
  });

  for (const testCase of reference.cases) {
    it(`should match PyTorch's top-k labels and scores (${JSON.stringify(testCase.question)} on input ${testCase.input})`, async () => {
      // The reference cuts long questions to the fine-tuning length; the runtime does that only when asked.
      const truncateQuestion = vqa.tokenize(testCase.question, { truncate: true }).length < testCase.question.split(' ').length;
      expect(vqa.tokenize(testCase.question, { truncate: truncateQuestion })).toEqual(testCase.inputIds);
      const { candidates } = await vqa.candidatesForPixels(toTensor(reference.inputs[testCase.input]!.pixelValues), testCase.question, {
        topK: testCase.topK.length,
        truncateQuestion,
      });
      expect(candidates.map((candidate) => candidate.answer)).toEqual(testCase.topK.map((candidate) => candidate.answer));
      candidates.forEach((candidate, index) => expect(Math.abs(candidate.score - testCase.topK[index]!.score)).toBeLessThan(1e-4));
    });
  }

  it('should return scores that are softmax probabilities over every label, best first', async () => {
    const { candidates } = await vqa.candidates(fixtureImage('fishing.jpg'), 'What is in the man\'s hand?', { topK: vqa.answers.length });
    const total = candidates.reduce((sum, candidate) => sum + candidate.score, 0);
    expect(total).toBeCloseTo(1, 5);
    for (let index = 1; index < candidates.length; index += 1) expect(candidates[index - 1]!.score).toBeGreaterThanOrEqual(candidates[index]!.score);
  });

  it('should run only the fusion graph for a second question about the same image', async () => {
    vqa.clearCache();
    const bytes = await readFile(fixtureImage('truck.jpg'));
    const first = await vqa.candidates(bytes, 'How many people are there?');
    const second = await vqa.candidates(Uint8Array.from(bytes), 'What color is the truck?');
    expect(first.imageCached).toBe(false);
    expect(first.timings.vision).toBeGreaterThanOrEqual(0);
    expect(second.imageCached).toBe(true);
    expect(second.timings.vision).toBeUndefined();
    expect(second.timings.preprocess).toBeUndefined();
    // Bytes whose embeddings are cached were validated before: they are hashed, not decoded again.
    expect(second.timings.decode).toBeUndefined();
    expect(first.timings.decode).toBeGreaterThanOrEqual(0);
    // The cached path gives what a fresh computation gives.
    vqa.clearCache();
    const fresh = await vqa.candidates(bytes, 'What color is the truck?');
    expect(fresh.candidates).toEqual(second.candidates);
  });

  it('should refuse an empty question and a question longer than the model accepts', async () => {
    await expect(vqa.candidates(fixtureImage('truck.jpg'), '   ')).rejects.toSatisfy(
      (error: unknown) => InvalidQuestionError.isInstance(error) && error.reason === 'empty',
    );
    const long = Array.from({ length: 200 }, () => 'what').join(' ');
    const error = await vqa.candidates(fixtureImage('truck.jpg'), long).catch((caught: unknown) => caught);
    expect(InvalidQuestionError.isInstance(error) && error.reason === 'too_long').toBe(true);
    expect((error as Error).message).toMatch(/at most \d+/);
    const cut = await vqa.candidates(fixtureImage('truck.jpg'), long, { truncateQuestion: true });
    expect(cut.candidates).toHaveLength(5);
  });

  it('should run a question longer than the fine-tuning length whole, as upstream does, and warn about it', async () => {
    const config = JSON.parse(await readFile(`${tinyVle}/config.json`, 'utf8')) as { max_question_tokens: number; text_config: { max_position_embeddings: number } };
    let words = 'what is the man holding';
    while (vqa.tokenize(words, { truncate: true }).length < config.max_question_tokens || vqa.tokenize(words, { truncate: false }).length <= config.max_question_tokens) words += ' and the man';
    const ids = vqa.tokenize(words);
    expect(ids.length).toBeGreaterThan(config.max_question_tokens);
    expect(ids.length).toBeLessThanOrEqual(config.text_config.max_position_embeddings);
    const whole = await vqa.candidates(fixtureImage('truck.jpg'), words);
    expect(whole.warnings?.map((warning) => warning.code)).toEqual(['question_longer_than_fine_tuning']);
    expect(whole.warnings?.[0]?.message).toContain(`${ids.length} tokens`);
    const cut = await vqa.candidates(fixtureImage('truck.jpg'), words, { truncateQuestion: true });
    expect(vqa.tokenize(words, { truncate: true })).toHaveLength(config.max_question_tokens);
    expect(cut.warnings).toBeUndefined();
    expect(cut.candidates.map((candidate) => candidate.score)).not.toEqual(whole.candidates.map((candidate) => candidate.score));
    const short = await vqa.candidates(fixtureImage('truck.jpg'), 'What is the man holding?');
    expect(short.warnings).toBeUndefined();
  });

  it('should refuse a top-k outside 1..number of labels', async () => {
    await expect(vqa.candidates(fixtureImage('truck.jpg'), 'What is it?', { topK: 0 })).rejects.toSatisfy(InvalidOptionError.isInstance);
    await expect(vqa.candidates(fixtureImage('truck.jpg'), 'What is it?', { topK: vqa.answers.length + 1 })).rejects.toThrow(/topK/);
  });
});
