import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { VqaInput } from '../../../chains/types.js';
import { validateQuestion } from '../../question.js';
import { validateHistory } from '../../conversation/index.js';
import { runWithUncancellableWork } from '../../image/uncancellable-work.js';
import { ApiError, toApiError } from '../api-error.js';
import { readImageSource } from '../image-source.js';
import type { ServerContext } from '../server-context.js';
import { acquireSlot, checkImage, requestScope, workError } from './request-scope.js';

interface VqaFields {
  image?: Uint8Array;
  /** Where the image came from, for error messages. */
  imageParam: string;
  question?: unknown;
  topK?: unknown;
  history?: unknown;
}

function parseTopK(value: unknown, maxTopK: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > maxTopK) {
    throw new ApiError(400, 'invalid_value', `top_k must be an integer from 1 to ${maxTopK}.`, { param: 'top_k' });
  }
  return number;
}

async function readMultipart(request: FastifyRequest): Promise<VqaFields> {
  const fields: VqaFields = { imageParam: 'image' };
  let unexpectedFile: string | undefined;
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      if (part.fieldname !== 'image') {
        // Drained rather than thrown at once: an unread part would stall the rest of the body.
        unexpectedFile = part.fieldname;
        part.file.resume();
        continue;
      }
      fields.image = await part.toBuffer();
    } else if (part.fieldname === 'question') {
      fields.question = part.value;
    } else if (part.fieldname === 'top_k' || part.fieldname === 'topK') {
      fields.topK = part.value;
    }
  }
  if (unexpectedFile !== undefined) {
    throw new ApiError(400, 'invalid_value', `Upload the image in the field "image", not ${JSON.stringify(unexpectedFile.slice(0, 50))}.`, { param: unexpectedFile.slice(0, 50) });
  }
  return fields;
}

async function readJson(request: FastifyRequest, context: ServerContext, signal: AbortSignal): Promise<VqaFields> {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'invalid_body', 'The request body must be a JSON object.');
  const { image, question, top_k: topKSnake, topK, history } = body as Record<string, unknown>;
  if (image === undefined || image === null || image === '') {
    throw new ApiError(400, 'missing_image', 'The request has no image; send `image` as a data URL, or upload it as multipart/form-data.', { param: 'image' });
  }
  if (typeof image !== 'string') throw new ApiError(400, 'invalid_value', '`image` must be a string (a data URL).', { param: 'image' });
  const bytes = await readImageSource(image, { ...context.settings, signal, param: 'image' });
  return { image: bytes, imageParam: 'image', question, topK: topKSnake ?? topK, history };
}

function toHistory(value: unknown, context: ServerContext): NonNullable<VqaInput['history']> {
  const { settings } = context;
  try {
    return validateHistory(value, { maxQuestionLength: settings.maxQuestionLength, maxAnswerLength: settings.maxAnswerTurnLength, maxTurns: settings.maxMessages });
  } catch (error) {
    throw toApiError(error, 'history');
  }
}

export function registerVqaRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/vqa', async (request, reply) => {
    const scope = requestScope(reply, context);
    const { signal } = scope;
    let fields: VqaFields;
    try {
      fields = request.isMultipart() ? await readMultipart(request) : await readJson(request, context, signal);
    } catch (error) {
      const apiError = toApiError(error, 'image');
      // The multipart parser's own errors (no boundary, a body that ends mid-part, broken part headers) are plain
      // Errors: they describe the client's body, not a server fault.
      if (apiError.status >= 500 && request.isMultipart()) throw new ApiError(400, 'invalid_multipart', 'The multipart/form-data body is malformed or ends before its closing boundary.', { cause: error });
      throw apiError;
    }
    if (!fields.image) throw new ApiError(400, 'missing_image', 'The request has no image; upload it in the multipart field "image".', { param: 'image' });
    if (fields.question === undefined || fields.question === null || (typeof fields.question === 'string' && fields.question.trim() === '')) {
      throw new ApiError(400, 'missing_question', 'The request has no question.', { param: 'question' });
    }
    if (typeof fields.question !== 'string') throw new ApiError(400, 'invalid_value', '`question` must be a string.', { param: 'question' });
    validateQuestion(fields.question, { maxLength: context.settings.maxQuestionLength });
    const topK = parseTopK(fields.topK, context.settings.maxTopK);
    // Earlier turns reach the LLM as the question does: each is checked as the question is, before any image work.
    const history = toHistory(fields.history, context);
    await checkImage(context, scope, fields.image, fields.imageParam);
    const input: VqaInput = {
      image: fields.image,
      question: fields.question,
      ...(topK !== undefined ? { topK } : {}),
      ...(history.length > 0 ? { history } : {}),
    };
    const image = fields.image;
    const done = await acquireSlot(context, scope);
    const { result: running, work } = runWithUncancellableWork(() => context.chain.invoke(input, { signal }));
    try {
      const result = await running;
      context.metrics.observeResult(result);
      request.log.info({ source: result.source, fallback: result.fallbackReason?.code, cached: result.cached, totalMs: Math.round(result.timings.total), imageBytes: image.byteLength }, 'answered');
      return result;
    } catch (error) {
      throw workError(error, context, scope, fields.imageParam);
    } finally {
      // The slot stays taken until a decode the deadline could not stop has ended.
      void work.settled().then(done);
    }
  });
}
