/** Small helpers over node:util parseArgs that turn bad flags into one clear line. */

/** A bad flag or flag value: one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Any other failure the CLI explains itself (a path it cannot write...): one line, exit code 1. */
export class CliError extends Error {
  override name = 'CliError';
}

export function intFlag(value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function requireFlag<T>(value: T | undefined, flag: string): T {
  if (value === undefined) throw new UsageError(`--${flag} is required`);
  return value;
}

/** "5,17,200" -> [5, 17, 200] */
export function parseIdList(value: string, flag: string): number[] {
  const ids = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (ids.length === 0 || !ids.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new UsageError(`--${flag} must be a comma-separated list of non-negative integers, got ${JSON.stringify(value)}`);
  }
  return ids;
}

/** "5GB", "200MiB", "1000" -> bytes; at least `min` (given as it is written in the message). */
export function parseBytes(value: string, flag: string, min: { bytes: number; text: string } = { bytes: 1, text: '1 byte' }): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/i.exec(value.trim());
  if (!m) throw new UsageError(`--${flag} must be a size such as 5GB or 512MiB, got ${JSON.stringify(value)}`);
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };
  const n = Math.round(Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]!);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${flag} is too large, got ${JSON.stringify(value)}`);
  if (n < min.bytes) throw new UsageError(`--${flag} must be at least ${min.text}, got ${JSON.stringify(value)}`);
  return n;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** --weights bf16|q8 (default bf16: exact; q8: 8-bit attention projections and lm_head, quantised at load). */
export function weightsFlag(value: string | undefined): 'bf16' | 'q8' {
  if (value === undefined || value === 'bf16' || value === 'q8') return value ?? 'bf16';
  throw new UsageError(`--weights must be bf16 or q8, got ${JSON.stringify(value)}`);
}

/** "128,1024" -> [128, 1024], each an integer >= min. */
export function intListFlag(value: string, flag: string, min = 0): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const ns = parts.map(Number);
  if (parts.some((s) => s === '') || !ns.every((n) => Number.isSafeInteger(n) && n >= min)) {
    throw new UsageError(`--${flag} must be a comma-separated list of integers >= ${min}, got ${JSON.stringify(value)}`);
  }
  return ns;
}
