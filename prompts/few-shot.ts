import type { Candidate } from '../src/types.js';

/** One worked example for the prompt: what the vision models said, and the reply the LLM should give. */
export interface FewShotExample {
  caption: string;
  question: string;
  candidates: Candidate[];
  shortAnswer: string;
  answer: string;
}

/**
 * A small bank in the spirit of Prophet and PICa: one example where the top candidate is right, and ones where the
 * caption shows it is wrong, so the model learns both to trust and to overrule the VQA model.
 *
 * None of the scenes is one of the project's test or demo photos (fishing, truck, dogs, door, birds): an example
 * about the photo being asked about would hand the model its answer and make demos look better than they are.
 *
 * @example
 * ```ts
 * const chain = createVqaChain({ vision, llm, fewShot: FEW_SHOT_EXAMPLES.slice(0, 2) });
 * ```
 */
export const FEW_SHOT_EXAMPLES: readonly FewShotExample[] = [
  {
    caption: 'a woman riding a bike down a city street with a red umbrella',
    question: 'What is the woman holding?',
    candidates: [
      { answer: 'bike', score: 0.48 },
      { answer: 'umbrella', score: 0.31 },
      { answer: 'bag', score: 0.07 },
    ],
    shortAnswer: 'umbrella',
    answer: 'The woman riding the bike is holding a red umbrella.',
  },
  {
    caption: 'two children and a woman sitting on a bench in a park',
    question: 'How many people are there?',
    candidates: [
      { answer: '2', score: 0.52 },
      { answer: '3', score: 0.33 },
      { answer: '4', score: 0.06 },
    ],
    shortAnswer: '3',
    answer: 'There are three people: two children and a woman sitting on a bench.',
  },
  {
    caption: 'a plate of pasta with tomato sauce and basil on a wooden table',
    question: 'What color is the sauce?',
    candidates: [
      { answer: 'red', score: 0.86 },
      { answer: 'orange', score: 0.07 },
      { answer: 'brown', score: 0.02 },
    ],
    shortAnswer: 'red',
    answer: 'The tomato sauce on the pasta is red.',
  },
  {
    caption: 'a cat sleeping on top of a laptop keyboard',
    question: 'Is the cat awake?',
    candidates: [
      { answer: 'yes', score: 0.55 },
      { answer: 'no', score: 0.44 },
    ],
    shortAnswer: 'no',
    answer: 'No, the cat is asleep on the laptop keyboard.',
  },
];
