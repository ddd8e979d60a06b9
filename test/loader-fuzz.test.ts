/**
 * Seeded fuzzing of the safetensors parser and Checkpoint.open: every outcome must be success
 * or a ModelLoadError, never another exception type and never a hang.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { ModelLoadError } from '../loader/errors.ts';
import { parseSafetensorsHeader, readSafetensorsHeader } from '../loader/safetensors.ts';
import { joinRaw, memoryByteSource, memorySource, readDir, SHARDED_DIR, splitSafetensors, TINY_DIR } from './helpers/loader-fixtures.ts';

const SEED = 0x5eed_1234;

/** mulberry32: small, deterministic, good enough for fuzzing. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const INTERESTING_NUMBERS = ['0', '-1', '1', '2', '7', '1e308', '-0', '0.5', '9007199254740993', '4294967296', '18446744073709551616', 'NaN', '"3"', 'null', '[]', '{}', 'true'];

/** One random mutation of a JSON text; returns the new bytes and a description. */
function mutateJson(r: Rng, json: Uint8Array): { bytes: Uint8Array; what: string } {
  const kind = r.int(7);
  const b = json.slice();
  if (kind === 0 && b.length > 0) {
    const at = r.int(b.length);
    const bit = 1 << r.int(8);
    b[at]! ^= bit;
    return { bytes: b, what: `flip bit ${bit} at ${at}` };
  }
  if (kind === 1) {
    const at = r.int(b.length + 1);
    const ins = new Uint8Array(1 + r.int(4)).map(() => r.pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x2d, 0x5c, 0xff, r.int(256)]));
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, at));
    out.set(ins, at);
    out.set(b.subarray(at), at + ins.length);
    return { bytes: out, what: `insert [${ins}] at ${at}` };
  }
  if (kind === 2 && b.length > 0) {
    const at = r.int(b.length);
    const n = 1 + r.int(Math.min(16, b.length - at));
    const out = new Uint8Array(b.length - n);
    out.set(b.subarray(0, at));
    out.set(b.subarray(at + n), at);
    return { bytes: out, what: `delete ${n} at ${at}` };
  }
  // Change a number (offsets, shape dims) to something interesting.
  const text = new TextDecoder().decode(b);
  const nums = [...text.matchAll(/-?\d+(\.\d+)?/g)];
  if (nums.length === 0) return { bytes: b, what: 'no-op' };
  const m = r.pick(nums);
  const choice = r.next() < 0.5 ? r.pick(INTERESTING_NUMBERS) : String(Number(m[0]) + r.pick([-2, -1, 1, 2, 16, -16, 1000]));
  const out = text.slice(0, m.index) + choice + text.slice(m.index! + m[0].length);
  if (kind === 6) {
    // Also change a dtype now and then.
    const dt = r.pick(['BF16', 'F16', 'F32', 'U8', 'I8', 'Q4', 'bf16', '']);
    const dtypes = [...out.matchAll(/"dtype":\s*"[^"]*"/g)];
    if (dtypes.length) {
      const d = r.pick(dtypes);
      const o2 = out.slice(0, d.index) + `"dtype":"${dt}"` + out.slice(d.index! + d[0].length);
      return { bytes: new TextEncoder().encode(o2), what: `number ${m[0]}@${m.index} -> ${choice}, dtype@${d.index} -> ${dt}` };
    }
  }
  return { bytes: new TextEncoder().encode(out), what: `number ${m[0]}@${m.index} -> ${choice}` };
}

function mutateFile(r: Rng, file: Uint8Array): { bytes: Uint8Array; what: string } {
  const { data, headerLen } = splitSafetensors(file);
  const json = file.subarray(8, 8 + headerLen);
  const kind = r.int(10);
  if (kind === 0) {
    const at = r.int(file.length + 1);
    return { bytes: file.subarray(0, at), what: `truncate file to ${at}` };
  }
  if (kind === 1) {
    const declared = r.pick([0n, 1n, BigInt(headerLen - 1), BigInt(headerLen + 1), BigInt(file.length), 2n ** 63n, 2n ** 64n - 1n, BigInt(r.int(2 ** 31))]);
    return { bytes: joinRaw(json, data, declared), what: `declared header length ${declared}` };
  }
  const m = mutateJson(r, json);
  if (kind === 2) {
    // Mutated JSON but the old declared length.
    return { bytes: joinRaw(m.bytes.subarray(0, Math.min(m.bytes.length, headerLen)), data.subarray(0, data.length - Math.max(0, headerLen - m.bytes.length)), BigInt(headerLen)), what: `${m.what}, old length` };
  }
  return { bytes: joinRaw(m.bytes, data), what: m.what };
}

function describeFailure(seed: number, i: number, what: string, e: unknown): string {
  return `seed ${seed} iteration ${i}: mutation "${what}" threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`;
}

async function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`hang: ${label} took over ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

let tiny: Map<string, Uint8Array>;
let sharded: Map<string, Uint8Array>;

beforeAll(async () => {
  tiny = await readDir(TINY_DIR);
  sharded = await readDir(SHARDED_DIR);
});

describe('loader fuzz', () => {
  it('random bytes and random header lengths', async () => {
    const r = rng(SEED);
    let ok = 0;
    for (let i = 0; i < 2000; i++) {
      const len = r.pick([0, 1, 7, 8, 9, 16, 64, 300]);
      const bytes = new Uint8Array(len).map(() => r.int(256));
      if (len >= 8 && r.next() < 0.7) {
        // A plausible header length, with random or JSON-ish bytes after it.
        new DataView(bytes.buffer).setBigUint64(0, BigInt(r.int(len)), true);
        if (r.next() < 0.5) bytes.set(new TextEncoder().encode('{"a":{"dtype":"U8"'.slice(0, len - 8)), 8);
      }
      const what = `random ${len} bytes [${bytes.slice(0, 24)}...]`;
      try {
        parseSafetensorsHeader('rand', bytes, bytes.length + r.int(100));
        await withTimeout(readSafetensorsHeader(memoryByteSource('rand', bytes)), 2000, what);
        ok++;
      } catch (e) {
        if (!(e instanceof ModelLoadError)) expect.fail(describeFailure(SEED, i, what, e));
      }
    }
    expect(ok).toBeLessThan(2000);
  });

  it('mutated golden headers through parseSafetensorsHeader and readSafetensorsHeader', async () => {
    const seed = SEED + 1;
    const r = rng(seed);
    const file = tiny.get('model.safetensors')!;
    const { headerLen } = splitSafetensors(file);
    const json = file.subarray(8, 8 + headerLen);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      let m = mutateJson(r, json);
      if (r.next() < 0.3) {
        const m2 = mutateJson(r, m.bytes);
        m = { bytes: m2.bytes, what: `${m.what}; ${m2.what}` };
      }
      try {
        parseSafetensorsHeader('model.safetensors', m.bytes, 8 + m.bytes.length + (file.length - 8 - headerLen));
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        if (!(e instanceof ModelLoadError)) expect.fail(describeFailure(seed, i, m.what, e));
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      }
      const f = mutateFile(r, file);
      try {
        await withTimeout(readSafetensorsHeader(memoryByteSource('model.safetensors', f.bytes)), 2000, f.what);
      } catch (e) {
        if (!(e instanceof ModelLoadError)) expect.fail(describeFailure(seed, i, f.what, e));
        expect(e.file, f.what).toBe('model.safetensors');
      }
    }
    // The mutations reach several distinct failure kinds, and some survive.
    expect(outcomes.size).toBeGreaterThanOrEqual(4);
  });

  it('Checkpoint.open over mutated in-memory checkpoints', async () => {
    const seed = SEED + 2;
    const r = rng(seed);
    const codes = new Map<string, number>();
    for (let i = 0; i < 800; i++) {
      const base = r.next() < 0.5 ? tiny : sharded;
      const files = new Map(base);
      const names = [...files.keys()];
      const target = r.pick(names);
      let what: string;
      if (target.endsWith('.safetensors')) {
        const m = mutateFile(r, files.get(target)!);
        files.set(target, m.bytes);
        what = `${target}: ${m.what}`;
      } else if (r.next() < 0.1) {
        files.delete(target);
        what = `delete ${target}`;
      } else {
        const m = mutateJson(r, files.get(target)!);
        files.set(target, m.bytes);
        what = `${target}: ${m.what}`;
      }
      const src = memorySource(files);
      try {
        const ck = await withTimeout(Checkpoint.open(src), 2000, what);
        for (const ref of ck.allTensors()) {
          const bytes = await ck.read(ref);
          expect(bytes.byteLength).toBe(ref.end - ref.begin);
        }
        await ck.close();
        codes.set('ok', (codes.get('ok') ?? 0) + 1);
      } catch (e) {
        if (!(e instanceof ModelLoadError)) expect.fail(describeFailure(seed, i, what, e));
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
      if (src.closed !== src.opened) expect.fail(`seed ${seed} iteration ${i}: mutation "${what}" left ${src.opened - src.closed} files open`);
    }
    expect(codes.size).toBeGreaterThanOrEqual(5);
  });
});
