// Dotted paths into a config object (`vision_config.hidden_size`), as template.json names config values.

/** The value at `path` in `config`, or undefined when any part is absent. */
export function configValue(config: Record<string, unknown>, path: string): unknown {
  let value: unknown = config;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** JSON equality: the same numbers, strings, nulls, arrays and objects (key order aside). */
export function sameJson(left: unknown, right: unknown): boolean {
  if (left === right) return true;
  if (Array.isArray(left) || Array.isArray(right)) {
    return Array.isArray(left) && Array.isArray(right) && left.length === right.length && left.every((item, index) => sameJson(item, right[index]));
  }
  if (typeof left !== 'object' || typeof right !== 'object' || left === null || right === null) return false;
  const leftKeys = Object.keys(left);
  const rightRecord = right as Record<string, unknown>;
  return (
    leftKeys.length === Object.keys(right).length &&
    leftKeys.every((key) => Object.hasOwn(rightRecord, key) && sameJson((left as Record<string, unknown>)[key], rightRecord[key]))
  );
}

/** A config value as error messages show it. */
export function showValue(value: unknown): string {
  return value === undefined ? '(absent)' : JSON.stringify(value);
}
