// The VQAv2 accuracy metric, rule for rule as the reference evaluation script defines it: vqaEval.py in
// GT-Vision-Lab/VQA (PythonEvaluationTools/vqaEvaluation, master after commit a013f00 "Fixed processing answers
// bug", 2021). Published VQAv2 numbers come from that script, so every quirk below is kept on purpose: a
// "cleaner" metric would make our numbers incomparable with everyone else's.

/**
 * Spellings without apostrophes mapped to the apostrophe form, applied per word after lower-casing. Kept exactly as
 * the reference has it, including entries that can never match (capitalised keys such as `Im`, since words are
 * lower-cased first) and the one backwards entry (`somebody'd` -> `somebodyd`).
 */
export const VQA_CONTRACTIONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't", dont: "don't",
    hadnt: "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't", havent: "haven't",
    hed: "he'd", "hed've": "he'd've", "he'dve": "he'd've", hes: "he's", howd: "how'd", howll: "how'll",
    hows: "how's", "Id've": "I'd've", "I'dve": "I'd've", Im: "I'm", Ive: "I've", isnt: "isn't", itd: "it'd",
    "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll", "let's": "let's", maam: "ma'am", mightnt: "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", mightve: "might've", mustnt: "mustn't",
    mustve: "must've", neednt: "needn't", notve: "not've", oclock: "o'clock", oughtnt: "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", shant: "shan't", "shed've": "she'd've",
    "she'dve": "she'd've", "she's": "she's", shouldve: "should've", shouldnt: "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", somebodyll: "somebody'll",
    somebodys: "somebody's", someoned: "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    someonell: "someone'll", someones: "someone's", somethingd: "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", somethingll: "something'll", thats: "that's", thered: "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", therere: "there're", theres: "there's", theyd: "they'd",
    "theyd've": "they'd've", "they'dve": "they'd've", theyll: "they'll", theyre: "they're", theyve: "they've",
    twas: "'twas", wasnt: "wasn't", "wed've": "we'd've", "we'dve": "we'd've", weve: "we've", werent: "weren't",
    whatll: "what'll", whatre: "what're", whats: "what's", whatve: "what've", whens: "when's", whered: "where'd",
    wheres: "where's", whereve: "where've", whod: "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    wholl: "who'll", whos: "who's", whove: "who've", whyll: "why'll", whyre: "why're", whys: "why's",
    wont: "won't", wouldve: "would've", wouldnt: "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", yall: "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", youd: "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", youll: "you'll", youre: "you're", youve: "you've",  }),
);

/** Number words the reference turns into digits (only zero to ten, and `none` -> `0`). */
export const VQA_NUMBER_WORDS: ReadonlyMap<string, string> = new Map(
  Object.entries({ none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10' }),
);

/** Words dropped wherever they occur. */
export const VQA_ARTICLES: ReadonlySet<string> = new Set(['a', 'an', 'the']);

/**
 * Characters the reference removes or turns into spaces, in its order. The apostrophe and colon are not among
 * them (they were in the 2015 version of the script), so "man's" keeps its apostrophe.
 */
export const VQA_PUNCTUATION: readonly string[] = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];

// Python's str.split()/strip() whitespace (unicode.isspace), which differs from JavaScript's \s: it includes the
// information separators \x1c-\x1f and NEL \x85, and excludes the BOM \ufeff.
const PYTHON_WHITESPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${PYTHON_WHITESPACE}]+`, 'u');
const EDGE_WHITESPACE = new RegExp(`^[${PYTHON_WHITESPACE}]+|[${PYTHON_WHITESPACE}]+$`, 'gu');

// The reference script runs under Python 2 with byte-string patterns, where \d is ASCII only.
const COMMA_BETWEEN_DIGITS = /[0-9],[0-9]/;
// The reference pattern is "(?!<=\d)(\.)(?!\d)": its first group is a look-ahead (a typo for a look-behind) that
// can never fail at a period, so the rule is "a period not followed by a digit".
const PERIOD_NOT_BEFORE_DIGIT = /\.(?![0-9])/g;
// The reference calls periodStrip.sub("", text, re.UNICODE): the third argument of sub() is a count, and
// re.UNICODE is 32, so at most 32 such periods go.
const MAX_PERIODS_STRIPPED = 32;

/** Python's str.strip(). */
function pythonStrip(text: string): string {
  return text.replace(EDGE_WHITESPACE, '');
}

/** Python's str.split() with no argument: runs of whitespace separate, empty words never appear. */
function pythonSplit(text: string): string[] {
  return pythonStrip(text)
    .split(WHITESPACE_RUN)
    .filter((word) => word !== '');
}

/**
 * The reference's first step for both the prediction and the human answers: newlines and tabs become spaces,
 * then surrounding whitespace goes.
 *
 * @example
 * ```ts
 * stripAnswer('  two\tdogs\n'); // 'two dogs'
 * ```
 */
export function stripAnswer(text: string): string {
  return pythonStrip(text.replaceAll('\n', ' ').replaceAll('\t', ' '));
}

/**
 * The reference's punctuation rule. Each listed character is deleted when it touches a space somewhere in the
 * text (`"red , white"`) or when the text has a comma between digits (`"1,000"`), else replaced by a space
 * (`"black/white"` -> `"black white"`); the test is made on the original text, for each character separately.
 * Then periods not followed by a digit are deleted (`"2.5"` keeps its period, `"yes."` loses it).
 *
 * @example
 * ```ts
 * processPunctuation('black/white'); // 'black white'
 * processPunctuation('1,000');       // '1000'
 * processPunctuation('yes.');        // 'yes'
 * ```
 */
export function processPunctuation(text: string): string {
  const deleteAll = COMMA_BETWEEN_DIGITS.test(text);
  let out = text;
  for (const mark of VQA_PUNCTUATION) {
    const touchesSpace = text.includes(`${mark} `) || text.includes(` ${mark}`);
    out = out.replaceAll(mark, touchesSpace || deleteAll ? '' : ' ');
  }
  let stripped = 0;
  return out.replace(PERIOD_NOT_BEFORE_DIGIT, (period) => (stripped++ < MAX_PERIODS_STRIPPED ? '' : period));
}

/**
 * The reference's word rule: lower-case, split on whitespace, number words zero..ten (and `none`) to digits,
 * articles dropped, apostrophe-less contractions restored (`dont` -> `don't`), words joined by single spaces.
 *
 * @example
 * ```ts
 * processDigitArticle('The  Two dogs'); // '2 dogs'
 * processDigitArticle('dont know');     // "don't know"
 * ```
 */
export function processDigitArticle(text: string): string {
  const words: string[] = [];
  for (const word of pythonSplit(text.toLowerCase())) {
    const mapped = VQA_NUMBER_WORDS.get(word) ?? word;
    if (!VQA_ARTICLES.has(mapped)) words.push(mapped);
  }
  return words.map((word) => VQA_CONTRACTIONS.get(word) ?? word).join(' ');
}

/**
 * The full VQAv2 normalisation of one answer: {@link stripAnswer}, {@link processPunctuation},
 * {@link processDigitArticle}. The metric itself applies it only when the humans disagree (see
 * {@link vqaAccuracy}); use this to compare two answers the way the metric would.
 *
 * @example
 * ```ts
 * normalizeAnswer('Two.');            // '2'
 * normalizeAnswer('A fishing-pole!'); // 'fishing pole'
 * ```
 */
export function normalizeAnswer(text: string): string {
  return processDigitArticle(processPunctuation(stripAnswer(text)));
}

/**
 * VQAv2 accuracy of one predicted answer against the human answers (ten in VQAv2): for each way of leaving one
 * human out, `min(#remaining humans who gave the prediction / 3, 1)`, averaged over the subsets. So 3 of 10
 * agreeing humans give 0.9, not 1: leaving out one of the three leaves only 2 matches (2/3), 3 of the 10 subsets.
 *
 * As in the reference, answers are normalised ({@link normalizeAnswer}) only when the humans' stripped answers
 * are not all identical; when they are, the prediction must equal them exactly after {@link stripAnswer}, so
 * `"Yes"` scores 0 against ten `"yes"`. VQAv2's released annotations are lower-case already, which makes this
 * matter only for predictions.
 *
 * @returns a number in [0, 1].
 * @throws {RangeError} when there are no human answers (the reference would divide by zero).
 *
 * @example
 * ```ts
 * vqaAccuracy('two', ['2', '2', '2', 'two', '3', '3', '4', '4', '5', '5']); // 1 (four humans said 2)
 * vqaAccuracy('red', ['red', 'red', 'red', 'blue', 'blue', 'blue', 'blue', 'blue', 'blue', 'blue']); // 0.9
 * ```
 */
export function vqaAccuracy(prediction: string, humanAnswers: readonly string[]): number {
  if (humanAnswers.length === 0) throw new RangeError('vqaAccuracy needs at least one human answer.');
  let answers = humanAnswers.map(stripAnswer);
  let predicted = stripAnswer(prediction);
  if (new Set(answers).size > 1) {
    answers = answers.map((answer) => processDigitArticle(processPunctuation(answer)));
    predicted = processDigitArticle(processPunctuation(predicted));
  }
  const matches = answers.filter((answer) => answer === predicted).length;
  let total = 0;
  for (const leftOut of answers) {
    const others = matches - (leftOut === predicted ? 1 : 0);
    total += Math.min(1, others / 3);
  }
  return total / answers.length;
}
