// Module hooks of ./import-recorder.mjs: appends each loaded module's URL, with the thread that asked, to the log.
import { appendFileSync } from 'node:fs';

let log;
let thread;

export function initialize(data) {
  log = data.log;
  thread = data.thread;
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  // Written before the module is handed back, so the line exists before the module runs.
  appendFileSync(log, `${thread}\t${url}\n`);
  return result;
}
