import type { ProgressCallback } from '../types.js';

/**
 * Turns byte counts over several files into the library's progress events: `start`, `progress`,
 * `done` per file and one `ready`. `loaded`/`total` are the current file's bytes; `progress` is the
 * percentage of all files' bytes, so it never goes backwards and one bar can show the whole task.
 *
 * @internal
 * @example
 * const progress = new ByteProgress('download:owner/name', totalBytes, onProgress);
 * progress.startFile('config.json', 1234);
 * progress.add(1234);
 * progress.doneFile('config.json');
 * progress.ready();
 */
export class ByteProgress {
  private loadedAll = 0;
  private fileLoaded = 0;
  private fileTotal = 0;
  private file = '';
  private lastReported = -1;

  constructor(
    private readonly task: string,
    private readonly totalAll: number,
    private readonly onProgress: ProgressCallback | undefined,
  ) {}

  startFile(file: string, total: number): void {
    this.file = file;
    this.fileLoaded = 0;
    this.fileTotal = total;
    this.onProgress?.({ status: 'start', task: this.task, file, total });
  }

  add(bytes: number): void {
    this.fileLoaded += bytes;
    this.loadedAll += bytes;
    // Thousands of 64 KiB chunks per graph: report only when the tenth of a percent changes.
    if (Math.floor(this.percent() * 10) > Math.floor(this.lastReported * 10)) this.report();
  }

  doneFile(file: string): void {
    if (this.percent() !== this.lastReported) this.report();
    this.onProgress?.({ status: 'done', task: this.task, file });
  }

  ready(): void {
    if (this.lastReported < 100) {
      this.loadedAll = this.totalAll;
      this.report();
    }
    this.onProgress?.({ status: 'ready', task: this.task });
  }

  private percent(): number {
    if (this.totalAll <= 0) return 100;
    return Math.min(100, (this.loadedAll / this.totalAll) * 100);
  }

  private report(): void {
    const progress = Math.max(this.percent(), this.lastReported, 0);
    this.lastReported = progress;
    this.onProgress?.({
      status: 'progress',
      task: this.task,
      file: this.file,
      loaded: this.fileLoaded,
      total: this.fileTotal,
      progress,
    });
  }
}

