// Records every module a process loads, main thread and worker threads alike, one `thread<TAB>url` a line in the file
// named by VQA_LLM_IMPORT_LOG. Used as `node --import ./test/cli/import-recorder.mjs ...`; worker threads inherit
// --import, so inference workers record theirs too.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (process.env.VQA_LLM_IMPORT_LOG) {
  register(new URL('./import-recorder-hooks.mjs', import.meta.url), { data: { log: process.env.VQA_LLM_IMPORT_LOG, thread: isMainThread ? 'main' : 'worker' } });
}
