import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { VqaInput } from '../../../chains/types.js';
import { validateQuestion } from '../../question.js';
import { ApiError, toApiError } from '../api-error.js';
import { checkImageHeader } from '../image-guard.js';
import { readImageSource } from '../image-source.js';
import type { ServerContext } from '../server-context.js';
import { acquireSlot, requestScope, workError } from './request-scope.js';

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

export function registerVqaRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/vqa', async (request, reply) => {
    const scope = requestScope(reply, context);
    const { signal } = scope;
    let fields: VqaFields;
    try {
      fields = request.isMultipart() ? await readMultipart(request) : await readJson(request, context, signal);
    } catch (error) {
      throw toApiError(error, 'image');
    }
    if (!fields.image) throw new ApiError(400, 'missing_image', 'The request has no image; upload it in the multipart field "image".', { param: 'image' });
    if (fields.question === undefined || fields.question === null || (typeof fields.question === 'string' && fields.question.trim() === '')) {
      throw new ApiError(400, 'missing_question', 'The request has no question.', { param: 'question' });
    }
    if (typeof fields.question !== 'string') throw new ApiError(400, 'invalid_value', '`question` must be a string.', { param: 'question' });
    validateQuestion(fields.question, { maxLength: context.settings.maxQuestionLength });
    const topK = parseTopK(fields.topK, context.settings.maxTopK);
    try {
      const { settings } = context;
      await checkImageHeader(fields.image, { maxPixels: settings.maxImagePixels, maxAspectRatio: settings.maxImageAspectRatio, maxFrames: settings.maxImageFrames });
    } catch (error) {
      throw toApiError(error, fields.imageParam);
    }
    const input: VqaInput = {
      image: fields.image,
      question: fields.question,
      ...(topK !== undefined ? { topK } : {}),
      ...(fields.history !== undefined ? { history: fields.history as VqaInput['history'] } : {}),
    };
    const image = fields.image;
    const done = await acquireSlot(context, scope);
    try {
      const result = await context.chain.invoke(input, { signal });
      context.metrics.observeResult(result);
      request.log.info({ source: result.source, fallback: result.fallbackReason?.code, cached: result.cached, totalMs: Math.round(result.timings.total), imageBytes: image.byteLength }, 'answered');
      return result;
    } catch (error) {
      throw workError(error, context, scope, fields.imageParam);
    } finally {
      done();
    }
  });
}
