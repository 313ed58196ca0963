import { InvalidOptionError } from '../errors/invalid-option-error.js';

/** A Redis URL split into what ioredis reads and the vqa-llm settings carried in its query string. */
export interface ParsedRedisUrl {
  /** The URL without vqa-llm's query parameters, for ioredis. */
  connection: string;
  /** vqa-llm's own query parameters (`ttl`, `precision`, `prefix`, `timeout`, `queue`), by name. */
  settings: Map<string, string>;
}

/**
 * Checks a `redis://` or `rediss://` URL given by flag (or env var) and splits off the query parameters that are
 * vqa-llm settings, so that one flag carries both where Redis is and how it is used.
 *
 * @throws {InvalidOptionError} naming `flag` for anything but a redis(s) URL, or an unknown setting.
 *
 * @example
 * parseRedisUrl('redis://127.0.0.1:6379/0?ttl=600', { flag: '--cache', settings: ['ttl', 'precision'] });
 * // { connection: 'redis://127.0.0.1:6379/0', settings: Map { 'ttl' => '600' } }
 */
export function parseRedisUrl(url: string, options: { flag: string; settings: readonly string[] }): ParsedRedisUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new InvalidOptionError('invalid_value', `${options.flag} must be a redis:// or rediss:// URL, got "${redact(url)}".`, { hint: 'For example redis://127.0.0.1:6379/0.', cause: error });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new InvalidOptionError('invalid_value', `${options.flag} must be a redis:// or rediss:// URL, got "${redact(url)}".`, { hint: 'For example redis://127.0.0.1:6379/0.' });
  }
  const settings = new Map<string, string>();
  for (const name of options.settings) {
    const value = parsed.searchParams.get(name);
    if (value !== null) settings.set(name, value);
    parsed.searchParams.delete(name);
  }
  return { connection: parsed.toString(), settings };
}

/** The URL with its password replaced, for messages and logs. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** A positive integer setting from the URL, or the default. */
export function integerSetting(settings: Map<string, string>, name: string, fallback: number, flag: string): number {
  const text = settings.get(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError('invalid_value', `${flag}: ${name} must be a positive integer, got "${text}".`);
  return value;
}
