/** One line of the configuration printed at start. */
export interface ConfigEntry {
  name: string;
  value: string;
  /** Where the value came from: `default`, `env NAME`, `--flag`. */
  source: string;
}

/**
 * Masks a secret for printing: enough to tell two keys apart, never enough to use one.
 *
 * @example
 * ```ts
 * maskSecret('sk-proj-abcdefghijklmnop'); // 'sk-…mnop (24 chars)'
 * maskSecret(undefined); // '(not set)'
 * ```
 */
export function maskSecret(value: string | undefined): string {
  if (value === undefined || value === '') return '(not set)';
  if (value.length < 16) return `**** (${value.length} chars)`;
  return `${value.slice(0, 3)}…${value.slice(-4)} (${value.length} chars)`;
}

/**
 * Hides a password or token in a URL's user info and in query parameters that look like keys.
 *
 * @example
 * ```ts
 * maskUrl('https://user:hunter2@llm.example/v1?api_key=abc'); // 'https://user:****@llm.example/v1?api_key=****'
 * ```
 */
export function maskUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.password) url.password = '****';
  for (const key of [...url.searchParams.keys()]) {
    if (/key|token|secret|password|auth/i.test(key)) url.searchParams.set(key, '****');
  }
  return url.href.replace(/%2A%2A%2A%2A/g, '****');
}

/**
 * Formats the configuration as aligned lines for a person reading a terminal or a log.
 *
 * @example
 * ```ts
 * formatConfig([{ name: 'port', value: '8080', source: 'default' }]);
 * ```
 */
export function formatConfig(entries: readonly ConfigEntry[]): string {
  const nameWidth = Math.max(...entries.map((entry) => entry.name.length));
  const valueWidth = Math.max(...entries.map((entry) => entry.value.length));
  return entries.map((entry) => `  ${entry.name.padEnd(nameWidth)}  ${entry.value.padEnd(valueWidth)}  (${entry.source})`).join('\n');
}
