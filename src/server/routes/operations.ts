import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../server-context.js';

// A fixed creation time: the "model" is this pipeline, whose identity does not change while the server runs.
const CREATED = Math.floor(Date.now() / 1000);

export function registerOperationsRoutes(app: FastifyInstance, context: ServerContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [
      {
        id: context.settings.modelName,
        object: 'model',
        created: CREATED,
        owned_by: 'vqa-llm',
        // The parts behind the one name, for people reading the list; clients ignore unknown fields.
        vqa_llm: { captionModel: context.vision.models.caption, vqaModel: context.vision.models.vqa, llm: context.llmName },
      },
    ],
  }));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const state = await context.readiness.check();
    return reply.status(state.ready ? 200 : 503).send({ status: state.ready ? 'ready' : 'not_ready', ...state, models: context.vision.models });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await context.metrics.registry.metrics();
    return reply.type(context.metrics.registry.contentType).send(body);
  });
}
