import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import * as yaml from 'yaml';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../dist/src/cli/main.js';
import { QUEUE_DEFAULTS, parseQueueUrl } from '../../dist/src/distributed/queue-settings.js';
import { parseRedisUrl } from '../../dist/src/distributed/redis-url.js';
import { startWorkerHealth, WORKER_HEALTH_PATHS } from '../../dist/src/distributed/worker-health.js';
import { createServerMetrics } from '../../dist/src/server/metrics.js';
import { root } from '../helpers/fixtures.js';
import { freePort } from './redis-server.js';

type Manifest = Record<string, any>;

const folder = join(root, 'deploy', 'kubernetes');
const files = readdirSync(folder).filter((name) => name.endsWith('.yaml'));
const manifests: { file: string; doc: Manifest }[] = files.flatMap((file) =>
  yaml.parseAllDocuments(readFileSync(join(folder, file), 'utf8')).map((document) => {
    expect(document.errors, file).toEqual([]);
    return { file, doc: document.toJS() as Manifest };
  }),
);
const ofKind = (kind: string): Manifest[] => manifests.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);

// Every string literal of the sources: an env var a manifest sets must be read somewhere.
function sourceText(dir: string): string {
  return readdirSync(dir, { withFileTypes: true })
    .map((entry) => (entry.isDirectory() ? sourceText(join(dir, entry.name)) : entry.name.endsWith('.ts') ? readFileSync(join(dir, entry.name), 'utf8') : ''))
    .join('\n');
}
const sources = sourceText(join(root, 'src'));

function vqaLlmContainers(): { deployment: string; container: Manifest; command: Command }[] {
  const program = createProgram();
  return ofKind('Deployment').flatMap((deployment) =>
    (deployment.spec.template.spec.containers as Manifest[])
      .filter((container) => container.command?.[0] === 'vqa-llm')
      .map((container) => {
        const command = program.commands.find((candidate) => candidate.name() === container.args[0]);
        expect(command, `vqa-llm ${container.args[0]}`).toBeDefined();
        return { deployment: deployment.metadata.name as string, container, command: command! };
      }),
  );
}

describe('the Kubernetes manifests in deploy/', () => {
  it('should parse, each document a named Kubernetes object', () => {
    expect(files).toEqual(expect.arrayContaining(['serve.yaml', 'worker.yaml', 'redis.yaml']));
    for (const { file, doc } of manifests) {
      expect(typeof doc.apiVersion, file).toBe('string');
      expect(typeof doc.kind, file).toBe('string');
      expect(typeof doc.metadata?.name, file).toBe('string');
    }
    expect(ofKind('HorizontalPodAutoscaler')).toHaveLength(1);
  });

  it('should run vqa-llm with flags and env vars the CLI has', () => {
    const containers = vqaLlmContainers();
    expect(containers.map(({ command }) => command.name()).sort()).toEqual(['serve', 'worker']);
    for (const { deployment, container, command } of containers) {
      const options = command.options as Option[];
      const args = container.args.slice(1) as string[];
      for (let index = 0; index < args.length; index += 1) {
        if (!args[index]!.startsWith('--')) continue;
        const option = options.find((candidate) => candidate.long === args[index]);
        expect(option, `${deployment}: vqa-llm ${command.name()} ${args[index]}`).toBeDefined();
        if (option!.required || option!.optional) {
          expect(args[index + 1], `${deployment}: ${args[index]} needs a value`).toBeDefined();
          // Each value passes the option's own parser (a port, a positive integer, ...).
          if (option!.parseArg) expect(() => option!.parseArg!(args[index + 1]!, undefined)).not.toThrow();
          index += 1;
        }
      }
      for (const env of container.env as Manifest[]) {
        const name = env.name as string;
        const isOption = options.some((option) => option.envVar === name);
        expect(isOption || sources.includes(`'${name}'`) || sources.includes(`.${name}`), `${deployment}: env ${name} is read nowhere`).toBe(true);
      }
    }
  });

  it('should point probes at the server\'s health routes on its port, and the Service at that port', () => {
    const serve = vqaLlmContainers().find(({ command }) => command.name() === 'serve')!.container;
    const port = Number(serve.args[serve.args.indexOf('--port') + 1]);
    expect(serve.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(serve.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(serve.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(serve.args[serve.args.indexOf('--host') + 1]).toBe('0.0.0.0');
    const service = ofKind('Service').find((candidate) => candidate.metadata.name === 'vqa-llm')!;
    expect(service.spec.ports[0].targetPort).toBe('http');
    const deployment = ofKind('Deployment').find((candidate) => candidate.metadata.name === 'vqa-llm-serve')!;
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    // The drain fits in the kubelet's grace period.
    const grace = Number(serve.env.find((env: Manifest) => env.name === 'VQA_LLM_SHUTDOWN_GRACE_MS').value);
    expect(grace).toBeLessThan(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000);
  });

  it("should point the worker's probes and scrapes at its health port, bound where the kubelet reaches it", () => {
    const { container, command } = vqaLlmContainers().find(({ command }) => command.name() === 'worker')!;
    const option = (flag: string): Option => (command.options as Option[]).find((candidate) => candidate.long === flag)!;
    const args = container.args as string[];
    const env = (name: string): string | undefined => (container.env as Manifest[]).find((entry) => entry.name === name)?.value;
    // The port from --health-port or its env var, through the option's own parser (so 0, "off" or 70000 fail here).
    const given = args.includes('--health-port') ? args[args.indexOf('--health-port') + 1] : env(option('--health-port').envVar!);
    expect(given, 'the worker sets --health-port or VQA_LLM_WORKER_HEALTH_PORT').toBeDefined();
    const port = option('--health-port').parseArg!(given!, undefined) as number;
    expect(port).toBeGreaterThan(0);
    expect(args.includes('--health-host') ? args[args.indexOf('--health-host') + 1] : env(option('--health-host').envVar!)).toBe('0.0.0.0');
    expect(container.ports).toEqual([{ name: 'health', containerPort: port }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: WORKER_HEALTH_PATHS.liveness, port: 'health' });
    expect(container.readinessProbe.httpGet).toEqual({ path: WORKER_HEALTH_PATHS.readiness, port: 'health' });
    expect(container.startupProbe.httpGet).toEqual({ path: WORKER_HEALTH_PATHS.liveness, port: 'health' });
    // The readiness probe's Redis ping (500 ms) fits in the probe's timeout.
    expect(container.readinessProbe.timeoutSeconds * 1000).toBeGreaterThan(500);
    // Prometheus scrapes each process where its metrics are.
    const annotations = (name: string): Manifest => ofKind('Deployment').find((deployment) => deployment.metadata.name === name)!.spec.template.metadata.annotations;
    expect(annotations('vqa-llm-worker')).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': WORKER_HEALTH_PATHS.metrics });
    const serve = vqaLlmContainers().find(({ command }) => command.name() === 'serve')!.container;
    expect(annotations('vqa-llm-serve')['prometheus.io/port']).toBe(serve.args[serve.args.indexOf('--port') + 1]);
  });

  it('should name only metrics that vqa-llm serve and vqa-llm worker export, on paths the worker answers', async () => {
    // A worker's health endpoint, with no models and its queue's Redis nowhere: every route answers, readiness 503.
    const health = await startWorkerHealth({ port: 0, queue: `redis://127.0.0.1:${await freePort()}/0`, defaultMetrics: false });
    try {
      for (const [route, status] of [[WORKER_HEALTH_PATHS.liveness, 200], [WORKER_HEALTH_PATHS.readiness, 503], [WORKER_HEALTH_PATHS.metrics, 200]] as const) {
        expect((await fetch(`${health.url}${route}`)).status, route).toBe(status);
      }
      const exported = new Set(
        [...(await createServerMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()), ...(await health.registry.getMetricsAsJSON())].map((metric) => metric.name),
      );
      // Every vqa_llm_* name in the manifests and the deploy README, comments included (a histogram's series too).
      const text = [...files.map((file) => readFileSync(join(folder, file), 'utf8')), readFileSync(join(root, 'deploy', 'README.md'), 'utf8')].join('\n');
      const named = new Set([...text.matchAll(/\bvqa_llm_[a-z_]+\*?/g)].map((match) => match[0].replace(/_(bucket|count|sum)$/, '')));
      expect(named.size).toBeGreaterThan(0);
      for (const name of named) {
        // `vqa_llm_worker_*`: a family, of which something must exist.
        const found = name.endsWith('*') ? [...exported].some((candidate) => candidate.startsWith(name.slice(0, -1))) : exported.has(name);
        expect(found, `${name} is exported by neither serve nor worker`).toBe(true);
      }
    } finally {
      await health.close();
    }
  });

  it('should autoscale on metrics the server exports and on the queue BullMQ fills', async () => {
    const hpa = ofKind('HorizontalPodAutoscaler')[0]!;
    expect(ofKind('Deployment').map((deployment) => deployment.metadata.name)).toContain(hpa.spec.scaleTargetRef.name);
    const exported = (await createServerMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((metric) => metric.name);
    for (const metric of hpa.spec.metrics.filter((entry: Manifest) => entry.type === 'Pods')) expect(exported).toContain(metric.pods.metric.name);
    const scaled = ofKind('ScaledObject')[0]!;
    expect(scaled.spec.triggers[0].metadata.listName).toBe(`${QUEUE_DEFAULTS.prefix}:${QUEUE_DEFAULTS.name}:wait`);
  });

  it('should give Redis URLs that the cache and the queue accept', () => {
    // Parsed, not connected: the hosts exist only in a cluster.
    for (const { container } of vqaLlmContainers()) {
      for (const env of container.env as Manifest[]) {
        if (env.name === 'VQA_LLM_QUEUE_URL') expect(parseQueueUrl(env.value, env.name).name).toBe(QUEUE_DEFAULTS.name);
        if (env.name === 'VQA_LLM_REDIS_URL') expect(Number(parseRedisUrl(env.value, { flag: env.name, settings: ['ttl'] }).settings.get('ttl'))).toBeGreaterThan(0);
      }
    }
  });
});
