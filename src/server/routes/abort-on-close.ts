import type { FastifyReply } from 'fastify';

/**
 * A signal that aborts when the client goes away before the response is finished, so that queued or running work
 * for a client who hung up stops. The response's `close` is the reliable event: the request's fires once its body
 * has been read.
 */
export function abortOnClose(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new DOMException('The client closed the connection.', 'AbortError'));
  });
  return controller.signal;
}
