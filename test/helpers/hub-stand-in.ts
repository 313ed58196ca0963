// A Hugging Face hub stand-in on 127.0.0.1: serves checkpoint folders the way huggingface.co serves model repos,
// for what huggingface_hub (2.4.0: snapshot_download, hf_hub_download, model_info, list_repo_tree, get_paths_info)
// and a Node-side fetcher request. Plain node:http, no dependencies.
//
// What it answers (models only; revisions are branch or tag names, or a served commit's 40-hex sha):
//   GET  /api/models/{repo}[/revision/{revision}]       model info: id, sha (the commit), siblings (with size,
//                                                        blobId and lfs when ?blobs=true), private, gated, ...
//   GET  /api/models/{repo}/tree/{revision}[/{path}]     [{ type: 'file', oid, size, path, lfs?: { oid, size,
//                                                        pointerSize } } | { type: 'directory', oid, size, path }]
//                                                        (?recursive=true lists the whole tree)
//   POST /api/models/{repo}/paths-info/{revision}        the tree entries of `paths` (form or JSON body)
//   HEAD/GET /{repo}/resolve/{revision}/{path}           a file in git: 307 to the relative
//                                                        /api/resolve-cache/models/{repo}/{commit}/{path}, which
//                                                        answers 200 with ETag "<git blob sha1>", X-Repo-Commit and
//                                                        Content-Length (as huggingface.co has done since 2025);
//                                                        a file in LFS: 302 to an absolute URL on a second loopback
//                                                        origin (the "CDN"), with X-Linked-Etag "<sha256>",
//                                                        X-Linked-Size and X-Repo-Commit on the 302 itself
//   HEAD/GET {cdn}/lfs/{repo}/{sha256}?path=...          the LFS file's bytes; Range requests get 206
// Errors carry the hub's X-Error-Code / X-Error-Message headers, which huggingface_hub turns into its typed errors:
// an unknown (or private, without its token) repo is 401 without a token and 404 with one, RepoNotFound; an
// unknown revision 404 RevisionNotFound; an unknown file 404 EntryNotFound with X-Repo-Commit; a bearer token that
// no repo or `validTokens` knows 401 "Invalid credentials in Authorization header".
// Xet storage is never advertised (no xetHash in trees, no X-Xet-Hash header), so clients fall back to plain HTTP
// even with hf_xet installed.
//
// Faults, for clients' error paths (`inject()`): an error status with its headers (429 with Retry-After, 500, 401,
// ...), a connection cut after some bytes of a file, a stalled body, a body held until a promise settles, a flipped
// byte, a Range header ignored (200 with the whole file). Each matches by origin, route, repo and file, for `times`
// requests.
//
// Every request is recorded, with its Authorization header. `environment()` also points HTTP(S)_PROXY at this
// server, with NO_PROXY for loopback, so that a child process reaching for any other host arrives here as a
// CONNECT or absolute-URI request and is refused and recorded as `foreign` instead of touching the network.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, relative, sep } from 'node:path';

export interface ServeOptions {
  /** Branch or tag name this folder is served under (default 'main'). Serve again for more revisions. */
  revision?: string;
  /** The commit's 40-hex sha (default: derived from the repo, the revision and the files' contents). */
  commit?: string;
  /** Makes the repo private: requests must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Which files are stored in LFS (default: the patterns of the hub's default .gitattributes). */
  lfs?: (path: string, size: number) => boolean;
  /** List a .gitattributes at the root, as every hub repo has (default true; a folder's own one wins). */
  gitattributes?: boolean;
}

export interface ServedFile {
  path: string;
  size: number;
  sha256: string;
  /** Git blob sha1 of the content, or for an LFS file of its pointer. */
  gitOid: string;
  lfs: boolean;
  /** Size of the LFS pointer (0 when not in LFS). */
  pointerSize: number;
  /** Where the bytes come from. */
  source: { file: string } | { content: Buffer };
}

export interface ServedRevision {
  repo: string;
  revision: string;
  commit: string;
  private: boolean;
  files: ServedFile[];
}

export type HubRoute = 'model-info' | 'tree' | 'paths-info' | 'resolve' | 'resolve-cache' | 'cdn' | 'unknown';

export interface HubRequest {
  /** `hub` (the endpoint), `cdn` (the LFS origin) or `foreign` (a proxied request for any other host). */
  origin: 'hub' | 'cdn' | 'foreign';
  method: string;
  url: string;
  route: HubRoute;
  repo?: string;
  /** The revision as the client wrote it (branch, tag or commit sha). */
  revision?: string;
  /** The repo file the request is about (resolve, resolve-cache, cdn). */
  file?: string;
  /** The raw Authorization header, if any. */
  authorization?: string;
  headers: IncomingMessage['headers'];
  status: number;
  /** Bytes of file content sent (GET 200/206 of a file). */
  bytes: number;
  /** The injected fault this request met, if any. */
  fault?: HubFault['type'];
}

/** Something going wrong on the way, for one request (see `HubStandIn.inject`). */
export type HubFault =
  /** Answer with this status (and headers, e.g. Retry-After) as a hub error. */
  | { type: 'status'; status: number; headers?: Record<string, string>; code?: string; message?: string }
  /** Send this many bytes of the body, then drop the connection. */
  | { type: 'cut'; afterBytes: number }
  /** Send this many bytes of the body, then nothing more, with the connection kept open. */
  | { type: 'stall'; afterBytes: number }
  /** Send this many bytes, then hold the rest until `until` settles. */
  | { type: 'pause'; afterBytes: number; until: Promise<unknown> }
  /** Flip the bits of the byte at this offset of the file. */
  | { type: 'corrupt'; offset: number }
  /** Answer a Range request with 200 and the whole file. */
  | { type: 'ignore-range' };

export interface HubFaultRule {
  fault: HubFault;
  origin?: 'hub' | 'cdn';
  route?: HubRoute | HubRoute[];
  repo?: string;
  file?: string;
  /** How many matching requests meet it (default 1). */
  times?: number;
  /** How many matching requests pass unharmed before it applies (default 0). */
  skip?: number;
}

export interface HubStandInOptions {
  /** Bearer tokens accepted besides the repos' own (a token the hub does not know gets 401). */
  validTokens?: string[];
  /** Answer /resolve/ for files in git with the 307 to /api/resolve-cache/ (default true) or with 200 directly. */
  resolveCache?: boolean;
  /** Redirect LFS files to the CDN origin (default true) or serve them from /resolve/ with the same headers. */
  lfsRedirect?: boolean;
  /** Honour ?blobs=true in model info (default true); false lists bare file names, as some mirrors do. */
  modelInfoBlobs?: boolean;
}

// The hub's default .gitattributes for a new model repo.
const DEFAULT_LFS_PATTERNS = [
  '*.7z', '*.arrow', '*.bin', '*.bz2', '*.ckpt', '*.ftz', '*.gz', '*.h5', '*.joblib', '*.lfs.*', '*.mlmodel',
  '*.model', '*.msgpack', '*.npy', '*.npz', '*.onnx', '*.ot', '*.parquet', '*.pb', '*.pickle', '*.pkl', '*.pt',
  '*.pth', '*.rar', '*.safetensors', 'saved_model/**/*', '*.tar.*', '*.tar', '*.tflite', '*.tgz', '*.wasm', '*.xz',
  '*.zip', '*.zst', '*tfevents*',
];
const GITATTRIBUTES = `${DEFAULT_LFS_PATTERNS.map((pattern) => `${pattern} filter=lfs diff=lfs merge=lfs -text`).join('\n')}\n`;

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index += 1) {
    const character = pattern[index]!;
    if (character === '*' && pattern[index + 1] === '*') {
      source += '.*';
      index += 1;
    } else if (character === '*') source += '[^/]*';
    else source += character.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  // Patterns without a slash match the file name in any folder, as in .gitattributes.
  return new RegExp(pattern.includes('/') ? `^${source}$` : `(^|/)${source}$`);
}
const DEFAULT_LFS = DEFAULT_LFS_PATTERNS.map(globToRegExp);
export const defaultLfs = (path: string): boolean => DEFAULT_LFS.some((pattern) => pattern.test(path));

const sha1 = (data: string | Buffer): string => createHash('sha1').update(data).digest('hex');
const lfsPointer = (sha256: string, size: number): string => `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;

async function hashFile(file: string): Promise<{ sha256: string; gitSha1: string; size: number }> {
  const { size } = await stat(file);
  const sha256 = createHash('sha256');
  const git = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file)) {
    sha256.update(chunk as Buffer);
    git.update(chunk as Buffer);
  }
  return { sha256: sha256.digest('hex'), gitSha1: git.digest('hex'), size };
}

async function listFolder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .filter((path) => !path.startsWith('.git/') && !path.startsWith('.cache/'))
    .sort();
}

interface RepoState {
  id: string;
  token?: string;
  revisions: Map<string, ServedRevision>;
  commits: Map<string, ServedRevision>;
}

/** A hub error as huggingface.co sends it: JSON body and the X-Error-* headers. */
class HubError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * @example
 * ```ts
 * const hub = new HubStandIn();
 * await hub.start();
 * const served = await hub.serve('test-org/blip-tied', checkpointFolder);
 * spawn(python, [...], { env: { ...process.env, ...hub.environment(tempHome) } });
 * hub.downloads('test-org/blip-tied');   // ['config.json', 'model.safetensors', ...]
 * await hub.stop();
 * ```
 */
export class HubStandIn {
  readonly requests: HubRequest[] = [];
  private readonly repos = new Map<string, RepoState>();
  private readonly faults: (HubFaultRule & { left: number; skipLeft: number })[] = [];
  private readonly validTokens: Set<string>;
  private readonly resolveCache: boolean;
  private readonly lfsRedirect: boolean;
  private readonly modelInfoBlobs: boolean;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private hubPort = 0;
  private cdnPort = 0;

  constructor(options: HubStandInOptions = {}) {
    this.validTokens = new Set(options.validTokens ?? []);
    this.resolveCache = options.resolveCache ?? true;
    this.lfsRedirect = options.lfsRedirect ?? true;
    this.modelInfoBlobs = options.modelInfoBlobs ?? true;
  }

  /** The endpoint to give clients as HF_ENDPOINT, e.g. http://127.0.0.1:40123 (no trailing slash). */
  get endpoint(): string {
    if (this.hubPort === 0) throw new Error('HubStandIn is not started');
    return `http://127.0.0.1:${this.hubPort}`;
  }

  /** The origin LFS files are redirected to. */
  get cdnOrigin(): string {
    if (this.cdnPort === 0) throw new Error('HubStandIn is not started');
    return `http://127.0.0.1:${this.cdnPort}`;
  }

  async start(): Promise<void> {
    if (this.servers.length > 0) return;
    const listen = async (origin: 'hub' | 'cdn'): Promise<number> => {
      const server = createServer((request, response) => this.handle(origin, request, response));
      server.on('connect', (request: IncomingMessage, socket: Socket) => {
        // A proxied https request for another host: refuse it, and remember it.
        this.record({ origin: 'foreign', method: 'CONNECT', url: request.url ?? '', route: 'unknown', headers: request.headers, status: 403, bytes: 0 }, request);
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      });
      server.on('connection', (socket) => {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      this.servers.push(server);
      return (server.address() as AddressInfo).port;
    };
    this.hubPort = await listen('hub');
    this.cdnPort = await listen('cdn');
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.servers.length = 0;
    this.hubPort = 0;
    this.cdnPort = 0;
  }

  /**
   * Serves `folder` (recursively; .git/ and .cache/ left out) as `repo` at `options.revision` (default 'main').
   * `extra` adds files that are not in the folder (decoys, a README), by repo path.
   */
  async serve(repo: string, folder: string | undefined, options: ServeOptions = {}, extra: Record<string, string | Buffer> = {}): Promise<ServedRevision> {
    if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) throw new Error(`not a hub repo id: ${repo}`);
    const revision = options.revision ?? 'main';
    const isLfs = options.lfs ?? defaultLfs;
    const sources = new Map<string, { file: string } | { content: Buffer }>();
    if (folder !== undefined) for (const path of await listFolder(folder)) sources.set(path, { file: join(folder, ...path.split('/')) });
    for (const [path, content] of Object.entries(extra)) sources.set(path, { content: Buffer.from(content) });
    if ((options.gitattributes ?? true) && !sources.has('.gitattributes')) sources.set('.gitattributes', { content: Buffer.from(GITATTRIBUTES) });

    const files: ServedFile[] = [];
    for (const path of [...sources.keys()].sort()) {
      const source = sources.get(path)!;
      const { sha256, gitSha1, size } = 'file' in source
        ? await hashFile(source.file)
        : {
            sha256: createHash('sha256').update(source.content).digest('hex'),
            gitSha1: sha1(Buffer.concat([Buffer.from(`blob ${source.content.length}\0`), source.content])),
            size: source.content.length,
          };
      const lfs = path !== '.gitattributes' && isLfs(path, size);
      const pointer = lfsPointer(sha256, size);
      files.push({
        path,
        size,
        sha256,
        gitOid: lfs ? sha1(`blob ${Buffer.byteLength(pointer)}\0${pointer}`) : gitSha1,
        lfs,
        pointerSize: lfs ? Buffer.byteLength(pointer) : 0,
        source,
      });
    }
    const commit = options.commit ?? sha1(`${repo}\n${revision}\n${files.map((file) => `${file.path}:${file.sha256}`).join('\n')}`);
    if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`a commit is 40 lowercase hex digits: ${commit}`);

    let state = this.repos.get(repo);
    if (state === undefined) {
      state = { id: repo, revisions: new Map(), commits: new Map() };
      this.repos.set(repo, state);
    }
    if (options.token !== undefined) {
      state.token = options.token;
      this.validTokens.add(options.token);
    }
    const served: ServedRevision = { repo, revision, commit, private: state.token !== undefined, files };
    state.revisions.set(revision, served);
    state.commits.set(commit, served);
    return served;
  }

  /**
   * Environment for a child process (huggingface_hub, or a Node fetcher reading the same variables): HF_ENDPOINT
   * here, HF_HOME and HF_HUB_CACHE under `home`, telemetry and progress bars off, HF_TOKEN only when given, and
   * proxies pointed here (NO_PROXY for loopback) so that nothing reaches another host. Start the child from
   * `withoutHubVariables(process.env)` so that the parent's HF_* and proxy settings do not leak in.
   */
  environment(home: string, token?: string): Record<string, string> {
    const environment: Record<string, string> = {
      HF_ENDPOINT: this.endpoint,
      HF_HOME: join(home, 'hf-home'),
      HF_HUB_CACHE: join(home, 'hf-home', 'hub'),
      HF_HUB_DISABLE_TELEMETRY: '1',
      HF_HUB_DISABLE_PROGRESS_BARS: '1',
      HTTP_PROXY: this.endpoint,
      HTTPS_PROXY: this.endpoint,
      ALL_PROXY: this.endpoint,
      http_proxy: this.endpoint,
      https_proxy: this.endpoint,
      all_proxy: this.endpoint,
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    };
    if (token !== undefined) environment.HF_TOKEN = token;
    return environment;
  }

  /** Repo files whose content was sent (GET of a file: resolve, resolve-cache or the CDN), in request order. */
  downloads(repo?: string): string[] {
    return this.requests
      .filter((entry) => entry.method === 'GET' && entry.file !== undefined && (repo === undefined || entry.repo === repo))
      .filter((entry) => (entry.status === 200 || entry.status === 206) && entry.route !== 'model-info' && entry.route !== 'tree')
      .map((entry) => entry.file!);
  }

  /** Requests for hosts other than the stand-in (through the proxy variables `environment()` sets). */
  foreignRequests(): HubRequest[] {
    return this.requests.filter((entry) => entry.origin === 'foreign');
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  /**
   * Makes the next `times` (default 1) requests that match meet `fault`. Status faults apply where the request
   * reaches a repo (model info, tree, resolve, resolve-cache, CDN); body faults where a file's bytes are sent.
   *
   * @example
   * hub.inject({ route: 'model-info', fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } }, times: 2 });
   * hub.inject({ route: 'cdn', file: 'model.safetensors', fault: { type: 'cut', afterBytes: 100_000 } });
   */
  inject(rule: HubFaultRule): void {
    this.faults.push({ ...rule, left: rule.times ?? 1, skipLeft: rule.skip ?? 0 });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Consumes and returns the faults of the given types that match this request. */
  private takeFaults(entry: HubRequest, types: HubFault['type'][]): HubFault[] {
    const taken: HubFault[] = [];
    for (const rule of this.faults) {
      if (rule.left <= 0 || !types.includes(rule.fault.type)) continue;
      if (rule.origin !== undefined && rule.origin !== entry.origin) continue;
      if (rule.route !== undefined && !(Array.isArray(rule.route) ? rule.route : [rule.route]).includes(entry.route)) continue;
      if (rule.repo !== undefined && rule.repo !== entry.repo) continue;
      if (rule.file !== undefined && rule.file !== entry.file) continue;
      if (rule.skipLeft > 0) {
        rule.skipLeft -= 1;
        continue;
      }
      rule.left -= 1;
      taken.push(rule.fault);
      entry.fault = rule.fault.type;
    }
    return taken;
  }

  private statusFault(entry: HubRequest): void {
    const [fault] = this.takeFaults(entry, ['status']);
    if (fault?.type === 'status') throw new HubError(fault.status, fault.code, fault.message ?? `injected ${fault.status}`, fault.headers ?? {});
  }

  // --------------------------------------------------------------------------------------------------------------

  private record(entry: Omit<HubRequest, 'authorization'>, request: IncomingMessage): HubRequest {
    const authorization = request.headers.authorization;
    const recorded: HubRequest = authorization === undefined ? entry : { ...entry, authorization };
    this.requests.push(recorded);
    return recorded;
  }

  private handle(origin: 'hub' | 'cdn', request: IncomingMessage, response: ServerResponse): void {
    const method = request.method ?? 'GET';
    const url = request.url ?? '/';
    const entry = this.record({ origin, method, url, route: 'unknown', headers: request.headers, status: 0, bytes: 0 }, request);
    response.on('finish', () => {
      entry.status = response.statusCode;
    });
    // A response cut short by a fault never finishes; its status was sent all the same.
    response.on('close', () => {
      if (entry.status === 0 && response.headersSent) entry.status = response.statusCode;
    });
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      // An absolute-URI request: a proxied plain-http request for another host.
      entry.origin = 'foreign';
      response.writeHead(502, { 'content-type': 'text/plain' }).end('the hub stand-in does not reach other hosts\n');
      return;
    }
    const body: Buffer[] = [];
    request.on('data', (chunk: Buffer) => body.push(chunk));
    request.on('end', () => {
      try {
        if (origin === 'cdn') this.handleCdn(entry, request, response);
        else this.handleHub(entry, request, response, Buffer.concat(body));
      } catch (error) {
        if (error instanceof HubError) {
          response
            .writeHead(error.status, {
              'content-type': 'application/json; charset=utf-8',
              ...(error.code === undefined ? {} : { 'x-error-code': error.code }),
              'x-error-message': error.message,
              ...error.headers,
            })
            .end(method === 'HEAD' ? undefined : JSON.stringify({ error: error.message }));
        } else {
          response.writeHead(500, { 'content-type': 'text/plain' }).end(method === 'HEAD' ? undefined : String(error));
        }
      }
    });
  }

  /** The repo a path starts with: a served one (longest first), else the first two segments. */
  private splitRepo(segments: string[]): { repo: string; rest: string[] } {
    for (const length of [2, 1]) {
      const candidate = segments.slice(0, length).join('/');
      if (this.repos.has(candidate)) return { repo: candidate, rest: segments.slice(length) };
    }
    return { repo: segments.slice(0, 2).join('/'), rest: segments.slice(2) };
  }

  private authorize(request: IncomingMessage, repo: string): RepoState {
    const header = request.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      token = match?.[1];
      if (token === undefined || !this.validTokens.has(token)) {
        throw new HubError(401, undefined, 'Invalid credentials in Authorization header');
      }
    }
    const state = this.repos.get(repo);
    if (state === undefined || (state.token !== undefined && state.token !== token)) {
      // The hub does not tell a private repo from a missing one; 401 without a token, 404 with one.
      throw new HubError(token === undefined ? 401 : 404, 'RepoNotFound', 'Repository not found');
    }
    return state;
  }

  private revision(state: RepoState, revision: string): ServedRevision {
    const served = state.revisions.get(revision) ?? state.commits.get(revision);
    if (served === undefined) throw new HubError(404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    return served;
  }

  private handleHub(entry: HubRequest, request: IncomingMessage, response: ServerResponse, body: Buffer): void {
    const parsed = new URL(entry.url, this.endpoint);
    const segments = parsed.pathname.split('/').slice(1);
    const method = entry.method;

    if (segments[0] === 'api' && segments[1] === 'resolve-cache' && segments[2] === 'models') {
      // /api/resolve-cache/models/{repo}/{commit}/{path}
      entry.route = 'resolve-cache';
      const { repo, rest } = this.splitRepo(segments.slice(3));
      entry.repo = repo;
      entry.revision = decodeURIComponent(rest[0] ?? '');
      entry.file = rest.slice(1).map(decodeURIComponent).join('/');
      this.statusFault(entry);
      const state = this.authorize(request, repo);
      const served = this.revision(state, entry.revision);
      this.sendFile(entry, request, response, served, rest.slice(1).map(decodeURIComponent).join('/'));
      return;
    }

    if (segments[0] === 'api' && segments[1] === 'models' && segments.length >= 3) {
      const { repo, rest } = this.splitRepo(segments.slice(2));
      entry.repo = repo;
      if (rest.length === 0 || (rest[0] === 'revision' && rest.length === 2)) {
        entry.route = 'model-info';
        if (method !== 'GET') throw new HubError(405, undefined, 'Method not allowed');
        entry.revision = rest.length === 0 ? 'main' : decodeURIComponent(rest[1]!);
        this.statusFault(entry);
        const state = this.authorize(request, repo);
        const served = this.revision(state, entry.revision);
        this.sendJson(response, 200, this.modelInfo(served, this.modelInfoBlobs && parsed.searchParams.get('blobs') === 'true'));
        return;
      }
      if (rest[0] === 'tree' && rest.length >= 2) {
        entry.route = 'tree';
        if (method !== 'GET') throw new HubError(405, undefined, 'Method not allowed');
        entry.revision = decodeURIComponent(rest[1]!);
        this.statusFault(entry);
        const state = this.authorize(request, repo);
        const served = this.revision(state, entry.revision);
        const under = rest.slice(2).map(decodeURIComponent).join('/');
        const recursive = parsed.searchParams.get('recursive') === 'true' || parsed.searchParams.get('recursive') === 'True';
        const expand = parsed.searchParams.get('expand') === 'true' || parsed.searchParams.get('expand') === 'True';
        if (under !== '' && !served.files.some((file) => file.path.startsWith(`${under}/`))) {
          throw new HubError(404, 'EntryNotFound', `${under} does not exist on "${served.revision}"`, { 'x-repo-commit': served.commit });
        }
        this.sendJson(response, 200, this.tree(served, under, recursive, expand));
        return;
      }
      if (rest[0] === 'paths-info' && rest.length === 2) {
        entry.route = 'paths-info';
        if (method !== 'POST') throw new HubError(405, undefined, 'Method not allowed');
        entry.revision = decodeURIComponent(rest[1]!);
        this.statusFault(entry);
        const state = this.authorize(request, repo);
        const served = this.revision(state, entry.revision);
        const { paths, expand } = parsePathsInfoBody(request.headers['content-type'], body);
        const all = this.tree(served, '', true, expand);
        this.sendJson(response, 200, all.filter((item) => paths.includes(item.path as string)));
        return;
      }
    }

    const resolveAt = segments.indexOf('resolve');
    if (segments[0] !== 'api' && resolveAt >= 1 && segments.length > resolveAt + 2) {
      // /{repo}/resolve/{revision}/{path}
      entry.route = 'resolve';
      const repo = segments.slice(0, resolveAt).join('/');
      entry.repo = repo;
      entry.revision = decodeURIComponent(segments[resolveAt + 1]!);
      const path = segments.slice(resolveAt + 2).map(decodeURIComponent).join('/');
      entry.file = path;
      this.statusFault(entry);
      const state = this.authorize(request, repo);
      const served = this.revision(state, entry.revision);
      const file = this.file(served, path);
      if (file.lfs && this.lfsRedirect) {
        const location = `${this.cdnOrigin}/lfs/${encodeURIComponent(repo)}/${file.sha256}?path=${encodeURIComponent(path)}&Expires=4102444800`;
        const text = `Found. Redirecting to ${location}`;
        response.writeHead(302, {
          location,
          'content-type': 'text/plain; charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
          etag: `"${file.gitOid}"`,
          'x-linked-etag': `"${file.sha256}"`,
          'x-linked-size': String(file.size),
          'x-repo-commit': served.commit,
          'accept-ranges': 'bytes',
        });
        response.end(method === 'HEAD' ? undefined : text);
        return;
      }
      if (!file.lfs && this.resolveCache) {
        const location = `/api/resolve-cache/models/${repo}/${served.commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
        const text = `Temporary Redirect. Redirecting to ${location}`;
        response.writeHead(307, {
          location,
          'content-type': 'text/plain; charset=utf-8',
          'content-length': String(Buffer.byteLength(text)),
          'x-repo-commit': served.commit,
        });
        response.end(method === 'HEAD' ? undefined : text);
        return;
      }
      this.sendFile(entry, request, response, served, path);
      return;
    }

    throw new HubError(404, undefined, `Sorry, we can't find the page you are looking for (${parsed.pathname}).`);
  }

  private handleCdn(entry: HubRequest, request: IncomingMessage, response: ServerResponse): void {
    entry.route = 'cdn';
    const parsed = new URL(entry.url, this.cdnOrigin);
    const segments = parsed.pathname.split('/').slice(1);
    if (segments.length !== 3 || segments[0] !== 'lfs') throw new HubError(404, undefined, 'NoSuchKey');
    const repo = decodeURIComponent(segments[1]!);
    const sha256 = segments[2]!;
    const path = parsed.searchParams.get('path') ?? '';
    entry.repo = repo;
    entry.file = path;
    this.statusFault(entry);
    // Like a signed CDN URL, this needs no token; whether one was sent anyway is in the record.
    const state = this.repos.get(repo);
    const file = [...(state?.revisions.values() ?? [])].flatMap((served) => served.files).find((candidate) => candidate.sha256 === sha256 && candidate.path === path);
    if (file === undefined) throw new HubError(404, undefined, 'NoSuchKey');
    this.sendBytes(entry, request, response, file, { etag: `"cdn-${file.sha256.slice(0, 32)}"` });
  }

  private file(served: ServedRevision, path: string): ServedFile {
    const file = served.files.find((candidate) => candidate.path === path);
    if (file === undefined) throw new HubError(404, 'EntryNotFound', 'Entry not found', { 'x-repo-commit': served.commit });
    return file;
  }

  private sendFile(entry: HubRequest, request: IncomingMessage, response: ServerResponse, served: ServedRevision, path: string): void {
    entry.file = path;
    const file = this.file(served, path);
    const headers: Record<string, string> = { etag: `"${file.lfs ? file.sha256 : file.gitOid}"`, 'x-repo-commit': served.commit };
    if (file.lfs) {
      headers['x-linked-etag'] = `"${file.sha256}"`;
      headers['x-linked-size'] = String(file.size);
    }
    this.sendBytes(entry, request, response, file, headers);
  }

  private sendBytes(entry: HubRequest, request: IncomingMessage, response: ServerResponse, file: ServedFile, headers: Record<string, string>): void {
    const name = file.path.split('/').pop()!;
    const common: Record<string, string> = {
      ...headers,
      'content-type': name.endsWith('.json') ? 'application/json' : name.endsWith('.txt') || name.endsWith('.md') ? 'text/plain; charset=utf-8' : 'application/octet-stream',
      'accept-ranges': 'bytes',
      'content-disposition': `inline; filename*=UTF-8''${encodeURIComponent(name)}; filename="${name.replace(/"/g, '')}"`,
    };
    const faults = entry.method === 'GET' ? this.takeFaults(entry, ['cut', 'stall', 'pause', 'corrupt', 'ignore-range']) : [];
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const range = faults.some((fault) => fault.type === 'ignore-range') ? undefined : request.headers.range;
    if (range !== undefined) {
      const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const from = match?.[1] ? Number(match[1]) : undefined;
      const to = match?.[2] ? Number(match[2]) : undefined;
      if (match === null || (from === undefined && to === undefined)) {
        // Not a single range: ignored, as servers may.
      } else {
        if (from === undefined) start = Math.max(0, file.size - to!);
        else {
          start = from;
          if (to !== undefined) end = Math.min(to, file.size - 1);
        }
        if (start >= file.size || start > end) {
          response.writeHead(416, { ...common, 'content-range': `bytes */${file.size}`, 'content-length': '0' }).end();
          return;
        }
        status = 206;
        common['content-range'] = `bytes ${start}-${end}/${file.size}`;
      }
    }
    const length = file.size === 0 ? 0 : end - start + 1;
    response.writeHead(status, { ...common, 'content-length': String(length) });
    if (entry.method === 'HEAD' || length === 0) {
      response.end();
      return;
    }
    if (faults.length > 0) {
      void this.sendWithFaults(entry, response, file, start, end, faults).catch(() => response.destroy());
      return;
    }
    if ('content' in file.source) {
      entry.bytes = length;
      response.end(file.source.content.subarray(start, end + 1));
      return;
    }
    const stream = createReadStream(file.source.file, { start, end });
    stream.on('data', (chunk) => {
      entry.bytes += chunk.length;
    });
    stream.on('error', () => response.destroy());
    stream.pipe(response);
  }

  /** Streams bytes start..end chunk by chunk, meeting the faults on the way. */
  private async sendWithFaults(entry: HubRequest, response: ServerResponse, file: ServedFile, start: number, end: number, faults: HubFault[]): Promise<void> {
    const chunks: Iterable<Buffer> | AsyncIterable<Buffer> =
      'content' in file.source
        ? (function* (content: Buffer) {
            for (let at = start; at <= end; at += 64 * 1024) yield content.subarray(at, Math.min(end + 1, at + 64 * 1024));
          })(file.source.content)
        : createReadStream(file.source.file, { start, end });
    const write = (chunk: Buffer) =>
      new Promise<void>((resolve, reject) => {
        response.write(chunk, (error) => (error ? reject(error) : resolve()));
      });
    const stops = faults
      .filter((fault): fault is Extract<HubFault, { afterBytes: number }> => 'afterBytes' in fault)
      .sort((left, right) => left.afterBytes - right.afterBytes);
    let position = start;
    let sent = 0;
    for await (const original of chunks) {
      let chunk = Buffer.from(original);
      for (const fault of faults) {
        if (fault.type === 'corrupt' && fault.offset >= position && fault.offset < position + chunk.length) chunk[fault.offset - position]! ^= 0xff;
      }
      position += chunk.length;
      while (chunk.length > 0) {
        const stop = stops[0];
        const room = stop === undefined ? chunk.length : Math.max(0, stop.afterBytes - sent);
        const part = chunk.subarray(0, Math.min(room, chunk.length));
        if (part.length > 0) {
          await write(part);
          sent += part.length;
          entry.bytes += part.length;
        }
        chunk = chunk.subarray(part.length);
        if (stop !== undefined && sent >= stop.afterBytes) {
          stops.shift();
          if (stop.type === 'cut') {
            response.socket?.destroy();
            return;
          }
          // A stall keeps the socket open until the client gives up or stop() closes it.
          if (stop.type === 'stall') return;
          await stop.until;
        }
      }
    }
    response.end();
  }

  private sendJson(response: ServerResponse, status: number, value: unknown): void {
    const text = JSON.stringify(value);
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) }).end(text);
  }

  private modelInfo(served: ServedRevision, blobs: boolean): Record<string, unknown> {
    const date = '2026-01-01T00:00:00.000Z';
    return {
      _id: sha1(served.repo).slice(0, 24),
      id: served.repo,
      modelId: served.repo,
      author: served.repo.includes('/') ? served.repo.split('/')[0] : undefined,
      sha: served.commit,
      lastModified: date,
      createdAt: date,
      private: served.private,
      disabled: false,
      gated: false,
      downloads: 0,
      likes: 0,
      tags: [],
      library_name: 'transformers',
      siblings: served.files.map((file) =>
        blobs
          ? { rfilename: file.path, size: file.size, blobId: file.gitOid, ...(file.lfs ? { lfs: { sha256: file.sha256, size: file.size, pointerSize: file.pointerSize } } : {}) }
          : { rfilename: file.path },
      ),
      spaces: [],
      usedStorage: served.files.reduce((total, file) => total + file.size, 0),
    };
  }

  private tree(served: ServedRevision, under: string, recursive: boolean, expand: boolean): Record<string, unknown>[] {
    const prefix = under === '' ? '' : `${under}/`;
    const folders = new Set<string>();
    const entries: Record<string, unknown>[] = [];
    const lastCommit = expand ? { lastCommit: { id: served.commit, title: 'Upload folder', date: '2026-01-01T00:00:00.000Z' } } : {};
    for (const file of served.files) {
      if (!file.path.startsWith(prefix)) continue;
      const parts = file.path.slice(prefix.length).split('/');
      for (let depth = 1; depth < parts.length && (recursive || depth === 1); depth += 1) folders.add(prefix + parts.slice(0, depth).join('/'));
      if (!recursive && parts.length > 1) continue;
      entries.push({
        type: 'file',
        oid: file.gitOid,
        size: file.size,
        path: file.path,
        ...(file.lfs ? { lfs: { oid: file.sha256, size: file.size, pointerSize: file.pointerSize } } : {}),
        ...lastCommit,
      });
    }
    const directories = [...folders].sort().map((path) => ({ type: 'directory', oid: sha1(`${served.commit}:${path}`), size: 0, path, ...lastCommit }));
    return [...directories, ...entries].sort((left, right) => String(left.path).localeCompare(String(right.path)));
  }
}

function parsePathsInfoBody(contentType: string | undefined, body: Buffer): { paths: string[]; expand: boolean } {
  const text = body.toString('utf8');
  if ((contentType ?? '').includes('application/json')) {
    const value = JSON.parse(text || '{}') as { paths?: string[] | string; expand?: boolean | string };
    const paths = value.paths === undefined ? [] : Array.isArray(value.paths) ? value.paths : [value.paths];
    return { paths, expand: value.expand === true || value.expand === 'true' || value.expand === 'True' };
  }
  const form = new URLSearchParams(text);
  const expand = form.get('expand');
  return { paths: form.getAll('paths'), expand: expand === 'true' || expand === 'True' };
}

/** `environment` without HF_*, HUGGING_FACE_* and proxy variables (start a hub child's environment from this). */
export function withoutHubVariables(environment: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(environment).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !/^(HF_|HUGGING_FACE_|HUGGINGFACE_)/i.test(entry[0]) && !/^(http|https|all|no)_proxy$/i.test(entry[0]),
    ),
  );
}
