import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVqaChain } from '../../dist/chains/vqa-chain.js';
import type { VqaResult } from '../../dist/chains/types.js';
import { loadJsonlDataset, loadVqaV2Dataset } from '../../dist/src/eval/dataset.js';
import { runEval, type EvalChain } from '../../dist/src/eval/run-eval.js';
import type { PredictionRecord } from '../../dist/src/eval/types.js';
import { vqaAccuracy } from '../../dist/src/eval/vqa-accuracy.js';
import { createChatModel } from '../../dist/src/llm/create-chat-model.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../helpers/fake-openai-server.js';
import { modelsDir, root } from '../helpers/fixtures.js';

const bundled = join(root, 'test', 'fixtures', 'eval', 'questions.jsonl');

async function readRecords(file: string): Promise<PredictionRecord[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as PredictionRecord);
}

/** A chain double that answers every question with its own id, so tests need no models. */
function echoChain(calls: string[]): EvalChain {
  return {
    async invoke({ question }) {
      calls.push(question);
      return {
        answer: 'It is an answer.',
        shortAnswer: 'answer',
        question,
        caption: 'a caption',
        candidates: [{ answer: 'candidate', score: 0.5 }],
        source: 'llm',
        cached: { caption: false, imageEmbeddings: false },
        timings: { prepare: 1, caption: 2, candidates: 3, vision: 3, llm: 4, total: 8, stages: { caption: {}, candidates: {} } },
        models: { caption: 'c', vqa: 'v', llm: 'l', prompt: 'p' },
      } satisfies VqaResult;
    },
  };
}

describe('runEval on the bundled set with the tiny models and a loopback LLM', () => {
  let scratch: string;
  let server: FakeOpenAiServer;
  let vision: Awaited<ReturnType<typeof createVisionModels>>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-eval-'));
    // Every reply says "2", so the VQA+LLM arm's accuracy can be worked out from the answers alone.
    server = await startFakeOpenAiServer([{ kind: 'content', content: '{"shortAnswer": "2", "answer": "There are two of them."}' }]);
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', workers: 1, threads: 1 });
  });

  afterAll(async () => {
    await vision?.dispose();
    await server?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('should write one record per question, score both arms consistently, and resume only the missing questions', async () => {
    const dataset = await loadJsonlDataset(bundled);
    expect(dataset.questions).toHaveLength(15);
    const llm = createChatModel({ provider: 'openai', baseUrl: server.baseUrl, maxRetries: 0 });
    const chain = createVqaChain({ vision, llm, llmRetries: 0 });
    const output = join(scratch, 'predictions.jsonl');

    const first = await runEval({ dataset, chain, output, concurrency: 2 });
    expect(first).toMatchObject({ computed: 15, resumed: 0 });
    expect(server.requests).toHaveLength(15);

    const records = await readRecords(output);
    expect(records.map((record) => record.questionId).sort((left, right) => Number(left) - Number(right))).toEqual(dataset.questions.map((question) => question.questionId));
    for (const record of records) {
      expect(record.error).toBeUndefined();
      expect(record.vqa!.shortAnswer).toBe(record.candidates![0]!.answer);
      expect(record.llm).toMatchObject({ shortAnswer: '2', answer: 'There are two of them.', source: 'llm' });
      expect(record.timings!.total).toBeGreaterThan(0);
    }

    // The summary agrees with scoring the file by hand.
    const answers = new Map(dataset.questions.map((question) => [question.questionId, question.answers]));
    const expectedVqa = records.reduce((sum, record) => sum + vqaAccuracy(record.vqa!.shortAnswer, answers.get(record.questionId)!), 0) / 15;
    const [vqaArm, llmArm] = first.summary.arms;
    expect(vqaArm!.accuracy).toBeCloseTo(expectedVqa, 12);
    // "2" is right for the two "how many" questions whose humans said 2 (birds, truck) and wrong elsewhere.
    expect(llmArm!.accuracy).toBeCloseTo(2 / 15, 12);
    expect(llmArm!.byAnswerType['number']).toEqual({ count: 3, accuracy: 2 / 3 });
    expect(first.summary.fallbacks).toEqual({ total: 0, byReason: {} });
    const effect = first.summary.llmEffect!;
    expect(effect.compared).toBe(15);
    expect(effect.helped + effect.hurt + effect.neutral).toBe(effect.changed);
    expect(effect.meanGain).toBeCloseTo(llmArm!.accuracy - vqaArm!.accuracy, 12);
    expect(first.summary.latency.total!.count).toBe(15);
    expect(first.summary.issues).toEqual([]);

    // Interrupt: keep 5 records and half of the sixth, as a killed process would leave them.
    const text = await readFile(output, 'utf8');
    const lines = text.split('\n');
    await writeFile(output, `${lines.slice(0, 5).join('\n')}\n${lines[5]!.slice(0, 20)}`);
    const kept = records.slice(0, 5).map((record) => record.questionId);

    const progress: number[] = [];
    const second = await runEval({ dataset, chain, output, concurrency: 2, onProgress: (event) => progress.push(event.done) });
    expect(second).toMatchObject({ computed: 10, resumed: 5 });
    expect(server.requests).toHaveLength(25);
    // No question among the kept five was asked again.
    const asked = server.requests.slice(15).map((request) => JSON.stringify(request.body.messages));
    for (const id of kept) {
      const question = dataset.questions.find((entry) => entry.questionId === id)!.question;
      expect(asked.some((messages) => messages.includes(JSON.stringify(question).slice(1, -1)))).toBe(false);
    }
    expect(progress).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const resumed = await readRecords(output);
    expect(resumed).toHaveLength(15);
    expect(new Set(resumed.map((record) => record.questionId)).size).toBe(15);
    expect(second.summary.arms[1]!.accuracy).toBeCloseTo(2 / 15, 12);
  });
});

describe('runEval with bad input', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-eval-bad-'));
    await cp(join(root, 'test', 'fixtures', 'eval', 'birds.jpg'), join(scratch, 'COCO_val2014_000000000001.jpg'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('should run VQAv2 files, counting missing images, unannotated questions and orphan annotations', async () => {
    const questionsFile = join(scratch, 'questions.json');
    const annotationsFile = join(scratch, 'annotations.json');
    const answers = (answer: string) => Array.from({ length: 10 }, (_, index) => ({ answer, answer_confidence: 'yes', answer_id: index + 1 }));
    await writeFile(
      questionsFile,
      JSON.stringify({
        data_subtype: 'val2014',
        questions: [
          { question_id: 10, image_id: 1, question: 'How many birds are there?' },
          { question_id: 11, image_id: 2, question: 'Whose image is missing?' },
          { question_id: 12, image_id: 1, question: 'Who annotated this?' },
        ],
      }),
    );
    await writeFile(
      annotationsFile,
      JSON.stringify({
        annotations: [
          { question_id: 10, image_id: 1, answer_type: 'number', question_type: 'how many', answers: answers('answer') },
          { question_id: 11, image_id: 2, answer_type: 'other', question_type: 'what', answers: answers('x') },
          { question_id: 13, image_id: 1, answer_type: 'other', question_type: 'what', answers: answers('y') },
        ],
      }),
    );
    const dataset = await loadVqaV2Dataset({ questionsFile, annotationsFile, imagesDir: scratch });
    const calls: string[] = [];
    const { summary } = await runEval({ dataset, chain: echoChain(calls), output: join(scratch, 'out', 'predictions.jsonl') });
    expect(calls).toEqual(['How many birds are there?']);
    expect(summary).toMatchObject({ questions: 2, predicted: 1 });
    expect(summary.arms[1]).toMatchObject({ name: 'llm', count: 1, accuracy: 1 });
    const byCode = Object.fromEntries(summary.issues.map((issue) => [issue.code, issue.questionIds]));
    expect(byCode).toEqual({ question_without_annotation: [12], annotation_without_question: [13], missing_image: [11], missing_prediction: [11] });
  });

  it('should refuse a dataset with duplicate question ids', async () => {
    const file = join(scratch, 'duplicates.jsonl');
    const line = JSON.stringify({ questionId: 1, image: 'a.jpg', question: 'Q?', answers: ['a'] });
    await writeFile(file, `${line}\n${line}\n`);
    await expect(loadJsonlDataset(file)).rejects.toMatchObject({ name: 'EvalDataError', reason: 'duplicate_question_id' });
  });

  it('should record failed questions, report them, and retry them on resume', async () => {
    const file = join(scratch, 'one.jsonl');
    await writeFile(file, `${JSON.stringify({ image: 'COCO_val2014_000000000001.jpg', question: 'Q?', answers: ['answer'] })}\n`);
    const dataset = await loadJsonlDataset(file);
    const output = join(scratch, 'failing.jsonl');
    const failing: EvalChain = { invoke: () => Promise.reject(Object.assign(new Error('vision broke'), { name: 'InferenceError' })) };
    const failed = await runEval({ dataset, chain: failing, output });
    expect(failed.summary.predicted).toBe(0);
    expect(failed.summary.issues.map((issue) => issue.code)).toEqual(['failed_question']);
    const calls: string[] = [];
    const retried = await runEval({ dataset, chain: echoChain(calls), output });
    expect(calls).toEqual(['Q?']);
    expect(retried.summary).toMatchObject({ predicted: 1, issues: [] });
  });
});

describe('vqa-llm eval run', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-eval-cli-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('should print the VQA-only arm alone with --llm none, and resume to nothing left on a second run', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const output = join(scratch, 'predictions.jsonl');
    const args = [join(root, 'bin', 'vqa-llm.js'), 'eval', '--dataset', bundled, '--output', output, '--limit', '3', '--llm', 'none'];
    const tiny = ['--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--workers', '0'];
    const env = { ...process.env, VQA_LLM_OFFLINE: '1' };
    const first = await promisify(execFile)(process.execPath, [...args, ...tiny], { cwd: root, env });
    expect(first.stdout).toContain('3 of 3 questions scored');
    expect(first.stdout).toMatch(/accuracy %\s+VQA only\n/);
    expect(first.stdout).not.toContain('VQA+LLM');
    expect(first.stderr).toContain('eval: 3/3 questions');
    const records = await readRecords(output);
    expect(records).toHaveLength(3);
    expect(records.every((record) => record.llm === undefined && record.vqa !== undefined)).toBe(true);
    const second = await promisify(execFile)(process.execPath, [...args, ...tiny], { cwd: root, env });
    expect(second.stderr).toContain('eval: 0/0 questions (failed 0, resumed 3)');
    expect(await readRecords(output)).toHaveLength(3);
  });
});
