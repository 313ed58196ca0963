import { DEFAULT_IMAGE_LIMITS } from '../image/image-defaults.js';

/**
 * Every default of the server, in one place so that the CLI help, the printed configuration and the README quote
 * the same numbers. The hardening issue tightens these; nothing else should hard-code them.
 */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  /** The name `/v1/models` lists and `model` must match. */
  modelName: 'vqa-llm',
  /**
   * Largest request body. A base64 data URL is 4/3 of the image, so this admits an image of the loader's
   * `maxBytes` (20 MiB) inside JSON with room to spare.
   */
  bodyLimitBytes: Math.ceil((DEFAULT_IMAGE_LIMITS.maxBytes * 4) / 3) + 1024 * 1024,
  maxImageBytes: DEFAULT_IMAGE_LIMITS.maxBytes,
  /** Off: a URL from a client makes the server connect wherever the client says (SSRF). */
  allowImageUrls: false,
  /**
   * Requests answered at once; the rest wait in order. Vision is CPU-bound and runs in each model's worker pool,
   * the LLM step is I/O: a few requests in flight keep both busy without piling work onto two cores.
   */
  maxConcurrency: 4,
  /**
   * Requests that may wait for a slot beyond those in flight; past them a request gets 503 with Retry-After at once,
   * before its body is read. Eight waiting per slot keeps the wait under a few answers' time.
   */
  maxQueue: 32,
  /** Seconds a refused client is told to wait (Retry-After on every 503). */
  retryAfterSeconds: 1,
  /**
   * Deadline of one request from arrival to the last byte of its answer; queued work past it is dropped (503) and
   * running work aborted (504). Room for a slow LLM (30 s) after a wait in the queue.
   */
  requestTimeoutMs: 60_000,
  /** Node's headersTimeout: the whole header block must arrive within this (slowloris). */
  headersTimeoutMs: 10_000,
  /** Node's requestTimeout: the whole request body must arrive within this (a 27 MB body at ~1 MB/s). */
  bodyTimeoutMs: 30_000,
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** On SIGTERM, in-flight requests get this long to finish before their connections are cut (Kubernetes allows 30 s). */
  shutdownGraceMs: 25_000,
  maxMessages: 64,
  maxTopK: 20,
  /** Longest question in characters, checked before the image is read. */
  maxQuestionLength: 1000,
  /** Image limits checked from the header before a request takes a slot (the vision models check again). */
  maxImagePixels: 40_000_000,
  maxImageAspectRatio: 32,
  /** Frames of an animation or pages of a TIFF; only the first is decoded, but a container of millions is refused. */
  maxImageFrames: 1000,
  /** Progressive JPEG scans counted from the bytes before a slot is taken: each costs a pass over every pixel. */
  maxJpegScans: 100,
  /** Deepest nesting of a JSON body; requests need about a dozen levels, and JSON.parse of millions stalls the loop. */
  maxJsonDepth: 64,
  /** Longest assistant turn of a conversation's history in characters (questions have maxQuestionLength). */
  maxAnswerTurnLength: 4000,
  /** Open connections at once; more are refused by the socket server (each holds a descriptor and a body buffer). */
  maxConnections: 512,
  /** Host names accepted when bound to a loopback address and no allow-list is given (DNS rebinding). */
  loopbackHosts: ['localhost', '127.0.0.1', '[::1]'],
  /** Consecutive LLM failures that open the circuit, and how long it stays open before one probe call. */
  llmFailureThreshold: 5,
  llmCircuitResetMs: 30_000,
  logLevel: 'info',
  web: true,
} as const;
