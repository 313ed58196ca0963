// Entry point of an inference worker thread (piscina). onnxruntime-node's run() occupies the calling thread,
// so models run here and the main thread's event loop stays free for servers, health checks and timeouts.
import { serializeError } from './serialized-error.js';
import { handleTask } from './task-handler.js';
import type { WorkerTask } from './worker-protocol.js';

export default async function run(task: WorkerTask): Promise<unknown> {
  try {
    return await handleTask(task);
  } catch (error) {
    // Structured cloning keeps only an Error's message: send the typed error's fields as data instead.
    return serializeError(error);
  }
}
