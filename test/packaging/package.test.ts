import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureImage, modelsDir, root } from '../helpers/fixtures.js';

// What `npm pack` makes, checked as a user gets it. The package is packed from a copy of the working tree (its
// prepack script rebuilds dist/src, dist/chains and dist/prompts, which must not happen under other test runs in the
// checkout), then unpacked into a fresh project whose node_modules holds vqa-llm and symlinks to the repository's
// copies of its declared dependencies only: require(), import and the CLI run there. A real `npm install` of the
// tarball (about 580 MB written, 45-55 s from a warm npm cache) runs only with VQA_LLM_PACKAGING_INSTALL=1.

const run = promisify(execFile);
const requireHere = createRequire(import.meta.url);
const semver = requireHere('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

interface PackageJson {
  name: string;
  version: string;
  license?: string;
  engines?: { node?: string };
  bin?: Record<string, string>;
  main?: string;
  exports?: unknown;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

/** The environment without what the outer `npm test` sets (npm_config_local_prefix would point npm at the checkout). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

async function npm(args: string[], cwd: string, extraEnv: Record<string, string> = {}, timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run('npm', args, { cwd, env: cleanEnv(extraEnv), timeout, maxBuffer: 64 * 1024 * 1024 });
}

async function node(args: string[], cwd: string, timeout = 60_000): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, args, { cwd, env: cleanEnv({ VQA_LLM_OFFLINE: '1' }), timeout, maxBuffer: 16 * 1024 * 1024 });
}

/** The working tree as a clone has it: no node_modules, build output, caches or local virtual environments. */
function copyWorkingTree(to: string): void {
  const skipTop = new Set(['node_modules', 'dist', '.git', '.venv', 'coverage', '.cache']);
  const skipPaths = new Set([join('test', 'output'), join('models', 'full-size'), join('bench', 'out')]);
  cpSync(root, to, {
    recursive: true,
    filter: (source) => {
      const path = relative(root, source);
      if (path === '') return true;
      const parts = path.split(sep);
      if (parts.length === 1 && skipTop.has(parts[0]!)) return false;
      if (skipPaths.has(path)) return false;
      return !parts.includes('__pycache__') && !path.endsWith('.tsbuildinfo');
    },
  });
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Bare module specifiers in compiled JavaScript: static and dynamic imports, re-exports, require(). */
function bareSpecifiers(source: string): string[] {
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  // JSDoc examples (`import { generateText } from 'ai'`) are not imports.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '');
  const found: string[] = [];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) {
      const specifier = match[1]!;
      if (!specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.startsWith('node:')) found.push(specifier);
    }
  }
  return found;
}

function directorySize(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + directorySize(join(path, name)), 0);
}

const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;

describe('the packed package', () => {
  let work: string;
  let tarball: string;
  let files: string[];
  let packStderr: string;
  let packed: PackageJson;
  let consumer: string;
  let installed: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vqa-llm-packaging-'));
    const tree = join(work, 'tree');
    copyWorkingTree(tree);
    symlinkSync(join(root, 'node_modules'), join(tree, 'node_modules'), 'dir');
    const { stdout, stderr } = await npm(['pack', '--json', '--pack-destination', work], tree);
    packStderr = stderr;
    const [result] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, result!.filename);
    files = result!.files.map((file) => file.path.split(sep).join('/')).sort();

    consumer = join(work, 'consumer');
    installed = join(consumer, 'node_modules', 'vqa-llm');
    mkdirSync(installed, { recursive: true });
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
    packed = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as PackageJson;
    // Only the dependencies the package declares are visible from its own folder, as in an install (with the
    // optional peers a user of the AI SDK adapter installs).
    for (const name of [...Object.keys(packed.dependencies ?? {}), ...Object.keys(packed.peerDependencies ?? {})]) {
      const link = join(consumer, 'node_modules', ...name.split('/'));
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(join(root, 'node_modules', ...name.split('/')), link, 'dir');
    }
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs without npm warnings about unknown configuration', () => {
    expect(packStderr).not.toMatch(/Unknown project config/);
  });

  it('ships the licence, the README, the build, the CLI, the demo page and the exporter', () => {
    for (const path of ['LICENSE', 'README.md', 'package.json', 'bin/vqa-llm.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/chains/vqa-chain.js', 'web/index.html', 'models/export.py', 'models/requirements.txt', 'models/vqa_llm_export/__init__.py']) {
      expect(files).toContain(path);
    }
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(packed.license).toBe('Apache-2.0');
  });

  it('ships nothing users do not run: no bench, examples or test builds, no TypeScript sources, no test-model tools', () => {
    const unwanted = files.filter(
      (path) =>
        /^(dist\/(bench|examples|test)\/|test\/|bench\/|examples\/|src\/|chains\/|prompts\/|docs\/|\.ci\/|\.venv\/)/.test(path) ||
        (path.endsWith('.ts') && !path.endsWith('.d.ts')) ||
        /\.tsbuildinfo$|__pycache__|\.pyc$/.test(path) ||
        /^models\/(make_|venv\.sh|full-size|vqa_llm_upstream)|testmodels_/.test(path),
    );
    expect(unwanted).toEqual([]);
  });

  it("ships every module the exporter's Python code imports from the package", () => {
    const missing: string[] = [];
    for (const path of files.filter((file) => file.startsWith('models/') && file.endsWith('.py'))) {
      const source = readFileSync(join(installed, path), 'utf8');
      for (const match of source.matchAll(/^\s*(?:from\s+(\.\w+|vqa_llm_\w+(?:\.\w+)*)\s+import|import\s+(vqa_llm_\w+(?:\.\w+)*))/gm)) {
        const name = match[1] ?? match[2]!;
        const module = name.startsWith('.') ? `${posix.dirname(path)}/${name.slice(1)}` : `models/${name.split('.').join('/')}`;
        if (!files.includes(`${module}.py`) && !files.includes(`${module}/__init__.py`)) missing.push(`${path}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('has no orphan source maps: every map and every sourceMappingURL points at shipped files', () => {
    const shipped = new Set(files);
    const orphans: string[] = [];
    for (const path of files.filter((file) => file.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(installed, path), 'utf8')) as { sources?: string[]; sourceRoot?: string; sourcesContent?: unknown[] };
      for (const [index, source] of (map.sources ?? []).entries()) {
        const target = posix.normalize(posix.join(posix.dirname(path), map.sourceRoot ?? '', source));
        if (!shipped.has(target) && map.sourcesContent?.[index] == null) orphans.push(`${path} -> ${target}`);
      }
    }
    for (const path of files.filter((file) => file.endsWith('.js'))) {
      for (const match of readFileSync(join(installed, path), 'utf8').matchAll(/^\/\/# sourceMappingURL=(.+)$/gm)) {
        const target = posix.normalize(posix.join(posix.dirname(path), match[1]!.trim()));
        if (!match[1]!.startsWith('data:') && !shipped.has(target)) orphans.push(`${path} -> ${target}`);
      }
    }
    expect(orphans).toEqual([]);
  });

  it('ships a build of the current sources only: each .js in dist has its .ts source and its declarations', () => {
    const stale = files
      .filter((path) => path.startsWith('dist/') && path.endsWith('.js'))
      .filter((path) => !existsSync(join(root, path.slice('dist/'.length).replace(/\.js$/, '.ts'))) || !files.includes(path.replace(/\.js$/, '.d.ts')));
    expect(stale).toEqual([]);
  });

  it('declares every package its code imports, and imports every package it declares', () => {
    const declared = new Set([...Object.keys(packed.dependencies ?? {}), ...Object.keys(packed.optionalDependencies ?? {}), ...Object.keys(packed.peerDependencies ?? {})]);
    // Peers are optional: only the adapter subpath that needs one imports it.
    expect(Object.keys(packed.peerDependencies ?? {}).every((name) => packed.peerDependenciesMeta?.[name]?.optional === true)).toBe(true);
    const used = new Set<string>();
    for (const path of files.filter((file) => file.endsWith('.js'))) {
      for (const specifier of bareSpecifiers(readFileSync(join(installed, path), 'utf8'))) used.add(packageName(specifier));
    }
    const undeclared = [...used].filter((name) => !declared.has(name) && !builtinModules.includes(name) && name !== packed.name);
    expect(undeclared).toEqual([]);
    expect([...declared].filter((name) => !used.has(name))).toEqual([]);
    // The examples' agent framework is for the examples and tests only.
    expect(declared.has('langchain')).toBe(false);
  });

  it('declares a Node version that every locked dependency supports', () => {
    const range = packed.engines?.node;
    expect(range).toBeDefined();
    const oldest = semver.minVersion(range!)!.version;
    // require() of ES modules without a flag: Node 20.19 and 22.12.
    expect(semver.satisfies(oldest, '^20.19.0 || >=22.12.0')).toBe(true);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
    const unsupported = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && !Array.isArray(entry.engines) && entry.engines?.node && !semver.satisfies(oldest, entry.engines.node))
      .map(([path, entry]) => `${path.replace(/^.*node_modules\//, '')} (node ${(entry.engines as { node: string }).node})`);
    expect(unsupported).toEqual([]);
  });

  it('exports the library and the AI SDK adapter for import and require, and its package.json', () => {
    expect(packed.exports).toEqual({
      '.': { types: './dist/src/index.d.ts', default: './dist/src/index.js' },
      './ai-sdk': { types: './dist/src/adapters/ai-sdk/index.d.ts', default: './dist/src/adapters/ai-sdk/index.js' },
      './package.json': './package.json',
    });
    expect(packed).toMatchObject({ name: rootPackage.name, version: rootPackage.version, engines: rootPackage.engines });
  });

  it('is require()d from CommonJS and imported from an ES module, with the same exports', async () => {
    writeFileSync(
      join(consumer, 'require.cjs'),
      `const vqa = require('vqa-llm');\n` +
        `console.log(JSON.stringify({ keys: Object.keys(vqa).sort(), resolved: require.resolve('vqa-llm'), version: require('vqa-llm/package.json').version, aiSdk: typeof require('vqa-llm/ai-sdk').createVqaLlm }));\n`,
    );
    writeFileSync(join(consumer, 'import.mjs'), `import * as vqa from 'vqa-llm';\nimport { createVisionModels } from 'vqa-llm';\nconsole.log(JSON.stringify({ keys: Object.keys(vqa).sort(), named: typeof createVisionModels }));\n`);
    const [required, imported] = await Promise.all([node(['require.cjs'], consumer), node(['import.mjs'], consumer)]);
    const cjs = JSON.parse(required.stdout) as { keys: string[]; resolved: string; version: string; aiSdk: string };
    expect(cjs.aiSdk).toBe('function');
    const esm = JSON.parse(imported.stdout) as { keys: string[]; named: string };
    expect(cjs.resolved).toBe(join(installed, 'dist', 'src', 'index.js'));
    expect(cjs.version).toBe(rootPackage.version);
    expect(cjs.keys).toEqual(esm.keys);
    expect(cjs.keys).toEqual(expect.arrayContaining(['createVisionModels', 'createVqaChain', 'createChatModel', 'BlipCaptioner', 'VleVqa']));
    expect(esm.named).toBe('function');
  });

  it('runs its CLI from the installed folder, inference included', async () => {
    const bin = join(installed, packed.bin!['vqa-llm']!);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect((await node([bin, '--help'], consumer)).stdout).toContain('Usage: vqa-llm');
    const { stdout } = await node([bin, 'candidates', fixtureImage('fishing.jpg'), "What is in the man's hand?", '--models', modelsDir, '--vqa-model', 'tiny-vle', '--top-k', '3', '--json'], consumer);
    expect((JSON.parse(stdout) as { candidates: unknown[] }).candidates).toHaveLength(3);
  });

  it.skipIf(process.env.VQA_LLM_PACKAGING_INSTALL !== '1')(
    'installs with npm into a new project, as the README says, with no network beyond the npm registry (VQA_LLM_PACKAGING_INSTALL=1)',
    async () => {
      const project = join(work, 'npm-install');
      mkdirSync(project);
      writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'npm-install', version: '1.0.0', private: true }));
      const started = Date.now();
      await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' }, 600_000);
      const seconds = (Date.now() - started) / 1000;
      writeFileSync(join(project, 'require.cjs'), `console.log(typeof require('vqa-llm').createVisionModels);\n`);
      writeFileSync(join(project, 'import.mjs'), `import { createVisionModels } from 'vqa-llm';\nconsole.log(typeof createVisionModels);\n`);
      expect((await node(['require.cjs'], project)).stdout.trim()).toBe('function');
      expect((await node(['import.mjs'], project)).stdout.trim()).toBe('function');
      const { stdout } = await npm(['exec', '--no', '--', 'vqa-llm', '--version'], project);
      expect(stdout.trim()).toBe(rootPackage.version);
      const megabytes = directorySize(join(project, 'node_modules')) / 1024 / 1024;
      console.log(`npm install of the tarball: ${seconds.toFixed(0)} s, node_modules ${megabytes.toFixed(0)} MiB (apparent size)`);
    },
    660_000,
  );
});
