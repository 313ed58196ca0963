// The demo page: one image, one question, the answer streamed from /v1/chat/completions. The page speaks the same
// OpenAI-compatible API as any client; the caption, candidates and timings come from the `vqa_llm` extra field.

const $ = (id) => document.getElementById(id);
const form = $('ask-form');
const dropZone = $('drop-zone');
const fileInput = $('image-input');
const preview = $('preview');
const questionInput = $('question');
const askButton = $('ask');

let modelName = 'vqa-llm';
let imageDataUrl = null;
let running = null;

async function loadModels() {
  try {
    const response = await fetch('/v1/models');
    const { data } = await response.json();
    const model = data[0];
    modelName = model.id;
    const parts = model.vqa_llm ?? {};
    $('models').textContent = `${model.id} · caption ${parts.captionModel} · VQA ${parts.vqaModel} · LLM ${parts.llm ?? 'none (VQA answer)'}`;
  } catch {
    $('models').textContent = 'could not list models';
  }
}

function updateButton() {
  askButton.disabled = !imageDataUrl || questionInput.value.trim() === '';
}

function showError(message) {
  const error = $('error');
  error.textContent = message;
  error.hidden = !message;
}

function readFile(file) {
  if (!file) return;
  if (!file.type.startsWith('image/') && file.type !== '') {
    showError(`${file.name} is not an image.`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    imageDataUrl = reader.result;
    preview.src = imageDataUrl;
    preview.hidden = false;
    $('drop-hint').hidden = true;
    dropZone.classList.add('has-image');
    // The answers shown were about the previous image.
    running?.abort();
    resetOutputs('—');
    showError('');
    updateButton();
  };
  reader.onerror = () => showError(`Could not read ${file.name}.`);
  reader.readAsDataURL(file);
}

dropZone.addEventListener('click', () => fileInput.click());
dropZone.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    fileInput.click();
  }
});
fileInput.addEventListener('change', () => readFile(fileInput.files[0]));
for (const type of ['dragenter', 'dragover']) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add('dragging');
  });
}
for (const type of ['dragleave', 'drop']) {
  dropZone.addEventListener(type, () => dropZone.classList.remove('dragging'));
}
dropZone.addEventListener('drop', (event) => {
  event.preventDefault();
  readFile(event.dataTransfer.files[0]);
});
questionInput.addEventListener('input', updateButton);

// `…` while a question is answered; `—` when there is nothing to show (no question yet, a new image, an error).
function resetOutputs(placeholder = '…') {
  $('caption').textContent = placeholder;
  $('candidates').replaceChildren();
  $('vqa-answer').textContent = placeholder;
  const answer = $('llm-answer');
  answer.textContent = placeholder === '…' ? '' : placeholder;
  answer.classList.toggle('streaming', placeholder === '…');
  $('source').hidden = true;
  $('fallback').hidden = true;
  $('timings').tBodies[0].replaceChildren();
}

// After an error, no box is left loading: the caption and candidates of a stream that failed later stay, since
// they are this question's; an answer that did not finish does not.
function clearUnfilled() {
  for (const id of ['caption', 'vqa-answer']) {
    if ($(id).textContent === '…') $(id).textContent = '—';
  }
  const answer = $('llm-answer');
  answer.textContent = '—';
  answer.classList.remove('streaming');
}

function showVision({ caption, candidates }, chosenIndex) {
  $('caption').textContent = caption || '(empty caption)';
  const list = $('candidates');
  list.replaceChildren(
    ...candidates.map((candidate, index) => {
      const item = document.createElement('li');
      if (index === chosenIndex) item.classList.add('chosen');
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = candidate.answer;
      name.title = candidate.answer;
      const bar = document.createElement('span');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.max(1, Math.round(candidate.score * 100))}%`;
      bar.append(fill);
      const score = document.createElement('span');
      score.className = 'score';
      score.textContent = candidate.score.toFixed(3);
      item.append(name, bar, score);
      return item;
    }),
  );
  $('vqa-answer').textContent = candidates[0]?.answer ?? '(no candidate)';
}

function showResult(result) {
  showVision(result, result.matchedCandidate?.index);
  const answer = $('llm-answer');
  answer.textContent = result.answer;
  answer.classList.remove('streaming');
  const source = $('source');
  source.hidden = false;
  // Without an LLM configured nothing fell back: the VQA answer is the answer.
  const noLlm = result.fallbackReason?.code === 'llm_disabled';
  source.textContent = result.source === 'llm' ? `LLM · ${result.models.llm}` : noLlm ? 'no LLM' : 'VQA fallback';
  source.classList.toggle('vqa', result.source !== 'llm');
  if (result.fallbackReason) {
    $('fallback').hidden = false;
    $('fallback').textContent = noLlm
      ? 'No LLM is configured on this server: the answer is the VQA model’s top candidate.'
      : `Answered from the VQA model: ${result.fallbackReason.message}`;
  }
  const { timings } = result;
  const rows = [
    ['prepare (decode, hash)', timings.prepare],
    [`caption${result.cached.caption ? ' (cached)' : ''}`, timings.caption],
    [`candidates${result.cached.imageEmbeddings ? ' (image cached)' : ''}`, timings.candidates],
    ['vision (both, concurrent)', timings.vision],
    ['LLM', timings.llm],
    ['total', timings.total],
  ];
  $('timings').tBodies[0].replaceChildren(
    ...rows.map(([label, ms]) => {
      const row = document.createElement('tr');
      if (label === 'total') row.className = 'total';
      const name = document.createElement('td');
      name.textContent = label;
      const value = document.createElement('td');
      value.textContent = `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
      row.append(name, value);
      return row;
    }),
  );
}

// Reads server-sent events from a fetch body: `data: {json}` blocks separated by blank lines.
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data) yield data;
    }
  }
}

async function ask(question) {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  resetOutputs();
  showError('');
  askButton.classList.add('busy');
  const answer = $('llm-answer');
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: modelName,
        stream: true,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: imageDataUrl } }, { type: 'text', text: question }] }],
      }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    }
    for await (const data of readEvents(response.body)) {
      if (data === '[DONE]') break;
      const event = JSON.parse(data);
      if (event.error) throw new Error(event.error.message);
      const extra = event.vqa_llm;
      if (extra?.type === 'vision') showVision(extra);
      const delta = event.choices?.[0]?.delta?.content;
      if (delta) answer.textContent += delta;
      if (extra?.type === 'result') showResult(extra);
    }
  } catch (error) {
    if (error.name !== 'AbortError') {
      showError(error.message);
      clearUnfilled();
    }
  } finally {
    answer.classList.remove('streaming');
    askButton.classList.remove('busy');
    if (running === controller) running = null;
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const question = questionInput.value.trim();
  if (imageDataUrl && question) void ask(question);
});

void loadModels();
