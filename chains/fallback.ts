import type { Candidate } from '../src/types.js';
import type { FallbackCode, FallbackReason } from './types.js';

/** The reason an LLM step was stopped by the chain's own deadline rather than by the caller. */
export class LlmDeadlineError extends Error {
  constructor(timeoutMs: number) {
    super(`The LLM did not answer within ${timeoutMs} ms.`);
    this.name = 'LlmDeadlineError';
  }
}

function field(error: unknown, name: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[name] : undefined;
}

function describe(error: unknown): string {
  const message = field(error, 'message');
  return typeof message === 'string' && message !== '' ? message : String(error);
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_SOCKET']);

function isConnectionError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    const name = field(current, 'name');
    const code = field(current, 'code');
    if (name === 'APIConnectionError' || (typeof code === 'string' && CONNECTION_CODES.has(code))) return true;
    if (typeof field(current, 'message') === 'string' && /fetch failed|socket hang up|terminated|Connection error/i.test(describe(current))) return true;
    current = field(current, 'cause');
  }
  return false;
}

/**
 * Turns whatever the LLM step threw into a stable fallback code. `deadlineHit` says the chain's own timer fired;
 * `receivedText` says part of a reply had arrived, which makes a connection failure a cut stream.
 */
export function classifyLlmError(error: unknown, context: { deadlineHit: boolean; receivedText: boolean; timeoutMs: number }): FallbackReason {
  if (context.deadlineHit || error instanceof LlmDeadlineError) {
    return { code: 'llm_timeout', message: `The LLM did not answer within ${context.timeoutMs} ms.` };
  }
  const name = field(error, 'name');
  const status = field(error, 'status') ?? field(field(error, 'response'), 'status');
  if (name === 'TimeoutError' || name === 'APIConnectionTimeoutError') {
    return { code: 'llm_timeout', message: `The LLM request timed out: ${describe(error)}` };
  }
  if (name === 'AbortError' || name === 'APIUserAbortError' || describe(error) === 'AbortError') {
    return { code: 'llm_aborted', message: `The LLM call was aborted: ${describe(error)}` };
  }
  if (typeof status === 'number') {
    const code: FallbackCode = status === 429 ? 'llm_rate_limited' : 'llm_http_error';
    return { code, status, message: `The LLM endpoint answered HTTP ${status}: ${describe(error)}` };
  }
  if (context.receivedText) {
    return { code: 'llm_stream_interrupted', message: `The LLM reply stopped midway: ${describe(error)}` };
  }
  if (isConnectionError(error)) {
    return { code: 'llm_connection_error', message: `The LLM endpoint could not be reached: ${describe(error)}` };
  }
  return { code: 'llm_error', message: `The LLM failed: ${describe(error)}` };
}

/**
 * The answer without an LLM: the top candidate as the short answer, and as a sentence of its own
 * ("fishing pole" becomes "Fishing pole."), which reads plainly without pretending to be more than it is.
 *
 * @example
 * ```ts
 * fallbackAnswer([{ answer: 'fish', score: 0.6 }]); // { shortAnswer: 'fish', answer: 'Fish.' }
 * ```
 */
export function fallbackAnswer(candidates: readonly Candidate[]): { shortAnswer: string; answer: string } {
  const top = candidates[0]?.answer.trim();
  if (!top) return { shortAnswer: '', answer: 'The VQA model gave no answer.' };
  const sentence = top.charAt(0).toUpperCase() + top.slice(1);
  return { shortAnswer: top, answer: /[.!?]$/.test(sentence) ? sentence : `${sentence}.` };
}
