/**
 * The on-demand synthetic checkpoint (loader/source-synthetic.ts) serves exactly the files the
 * writer writes, any byte range of them, and the generator behind it is random access
 * (xoshiro jump-ahead) with the MXFP4 bytes of the original sequential generator.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../loader/checkpoint.ts';
import { Rng, seedState } from '../loader/rng.ts';
import { jumpState, stepState } from '../loader/rng-jump.ts';
import { directorySource } from '../loader/source-node.ts';
import { syntheticSource } from '../loader/source-synthetic.ts';
import { nodeSyntheticSource } from '../loader/source-synthetic-node.ts';
import { readBytes, type ModelSource } from '../loader/source.ts';
import { checkpointTensorBytes } from './helpers/loader-fixtures.ts';
import { bf16NormalTable, e8m0Mixture, synthDist, SynthTensorGenerator } from '../loader/synth-gen.ts';
import { synthConfig, synthShape, synthTensors, type SynthOverrides, type SynthPreset } from '../loader/synth.ts';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { bf16ToF32 } from '../loader/numeric.ts';

const SMALL: SynthOverrides = { vocab: 512, hidden: 64, intermediate: 64, layers: 3, experts: 8 };

let root: string | undefined;
const writtenDirs = new Map<string, Promise<{ dir: string; files: string[] }>>();
/** A checkpoint written by the writer into a temporary directory (once per name). */
function written(name: string, preset: SynthPreset, overrides: SynthOverrides | undefined, seed: number, maxShardBytes?: number) {
  let w = writtenDirs.get(name);
  if (!w) {
    w = (async () => {
      root ??= await mkdtemp(join(tmpdir(), 'gptoss-procsrc-'));
      const dir = join(root, name);
      const res = await writeSyntheticCheckpoint({ preset, overrides, seed, outDir: dir, maxShardBytes });
      return { dir, files: res.files };
    })();
    writtenDirs.set(name, w);
  }
  return w;
}
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function expectSameCheckpoint(dir: string, files: string[], served: ModelSource & { files: string[] }) {
  expect([...served.files].sort(), 'files served vs files written').toEqual([...files].sort());
  for (const file of files) {
    const disk = new Uint8Array(await readFile(join(dir, file)));
    const ours = await readBytes(served, file);
    expect(ours.length, `${file}: size`).toBe(disk.length);
    expect(Buffer.compare(ours, disk), `${file}: bytes differ from the written file`).toBe(0);
  }
  const a = await checkpointTensorBytes(await directorySource(dir));
  const b = await checkpointTensorBytes(served);
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, bytes] of a) expect(Buffer.compare(b.get(name)!, bytes), `tensor ${name}`).toBe(0);
}

describe('procedural synthetic source', () => {
  it('serves the written single-file checkpoint byte for byte', async () => {
    const { dir, files } = await written('single', 'tiny', SMALL, 1);
    await expectSameCheckpoint(dir, files, syntheticSource({ preset: 'tiny', overrides: SMALL, seed: 1 }));
  });

  it('serves a sharded checkpoint (index and hub names) byte for byte', async () => {
    const { dir, files } = await written('sharded', 'tiny', SMALL, 4, 150_000);
    expect(files.filter((f) => f.endsWith('.safetensors')).length, 'the case must be sharded').toBeGreaterThanOrEqual(3);
    await expectSameCheckpoint(dir, files, syntheticSource({ preset: 'tiny', overrides: SMALL, seed: 4, maxShardBytes: 150_000 }));
  });

  it('with the real vocabulary (Node) also serves the writer\'s tokenizer files', async () => {
    const overrides = { layers: 1 };
    const { dir, files } = await written('real-vocab', 'tiny', overrides, 2);
    expect(files).toContain('tokenizer.json');
    await expectSameCheckpoint(dir, files, nodeSyntheticSource({ preset: 'tiny', overrides, seed: 2 }));
    expect(await syntheticSource({ preset: 'tiny', overrides, seed: 2 }).exists('tokenizer.json'), 'no tokenizer without extraFiles').toBe(false);
  });

  it('any byte range, in any order, equals the file\'s (odd offsets, across header and tensor boundaries)', async () => {
    const { dir } = await written('single', 'tiny', SMALL, 1);
    const disk = new Uint8Array(await readFile(join(dir, 'model.safetensors')));
    const src = await syntheticSource({ preset: 'tiny', overrides: SMALL, seed: 1 }).open('model.safetensors');
    expect(src.size).toBe(disk.length);
    const rng = new Rng(99, 'ranges');
    for (let i = 0; i < 300; i++) {
      const len = i % 3 === 0 ? rng.nextU32() % 9 : rng.nextU32() % 70_000;
      const off = rng.nextU32() % (disk.length - len + 1);
      const got = await src.read(off, len);
      expect(Buffer.compare(got, disk.subarray(off, off + len)), `read(${off}, ${len})`).toBe(0);
      // readInto, also into an unaligned view
      const backing = new Uint8Array(len + 3);
      await src.readInto!(off, backing.subarray(3));
      expect(Buffer.compare(backing.subarray(3), disk.subarray(off, off + len)), `readInto(${off}, ${len}) at byte offset 3`).toBe(0);
    }
    await expect(src.read(disk.length - 4, 8)).rejects.toThrow(/past the end/);
    await expect(syntheticSource({ preset: 'tiny', seed: 0 }).open('nope.json')).rejects.toThrow(/no file nope\.json/);
  });

  it('Checkpoint.streamInto reads every tensor through one reused buffer (with and without readInto)', async () => {
    const { dir } = await written('single', 'tiny', SMALL, 1);
    for (const source of [syntheticSource({ preset: 'tiny', overrides: SMALL, seed: 1 }), await directorySource(dir)]) {
      const ck = await Checkpoint.open(source);
      try {
        const scratch = new Uint8Array(1001);
        for (const ref of ck.allTensors()) {
          const parts: Uint8Array[] = [];
          for await (const chunk of ck.streamInto(ref, scratch)) {
            expect(chunk.length, `${ref.name}: chunk larger than the scratch`).toBeLessThanOrEqual(scratch.length);
            if (source.description.includes('synthetic')) expect(chunk.buffer, `${ref.name}: chunk is not a view of the scratch`).toBe(scratch.buffer);
            parts.push(chunk.slice());
          }
          expect(Buffer.compare(Buffer.concat(parts), await ck.read(ref)), `${ref.name} via streamInto (${source.description})`).toBe(0);
        }
      } finally {
        await ck.close();
      }
    }
  });

  it('opens the 120b without generating it, and reads any range of its largest tensors at once', async () => {
    const t0 = performance.now();
    const source = syntheticSource({ preset: '120b', seed: 0 });
    const ck = await Checkpoint.open(source);
    try {
      expect(ck.totalBytes, '120b weight bytes').toBeGreaterThan(60e9);
      expect(ck.headers.length, 'hub shards of at most 5 GB').toBeGreaterThanOrEqual(13);
      const f = await source.open(ck.tensor('lm_head').file);
      const ref = ck.tensor('gate_up_blocks', 35);
      const g = await source.open(ref.file);
      const end = await g.read(ref.end - 4096, 4096);
      const mid = await f.read(ck.tensor('lm_head').end - 1_000_001, 1_000_001);
      // Two overlapping reads agree where they overlap (each jumped to on its own).
      const a = await g.read(ref.end - 4096 - 999, 1500);
      expect(Buffer.compare(a.subarray(999), end.subarray(0, 501)), 'overlapping reads').toBe(0);
      expect(mid.some((b) => b !== 0)).toBe(true);
      await f.close();
      await g.close();
    } finally {
      await ck.close();
    }
    expect(performance.now() - t0, 'ms to open the 120b and read from its end').toBeLessThan(5000);
  });
});

describe('random-access generator', () => {
  it('xoshiro jump-ahead equals stepping', () => {
    const s0 = seedState(5, 'jump');
    let s = s0;
    const wanted = new Set([0, 1, 127, 128, 129, 1000, 65_537]);
    for (let n = 0; n <= 65_537; n++) {
      if (wanted.has(n)) expect(jumpState(s0, n).map((w) => w >>> 0), `jump ${n}`).toEqual(s.map((w) => w >>> 0));
      s = stepState(s);
    }
    // A far jump equals two shorter ones.
    const far = 3_000_000_017;
    expect(jumpState(s0, far).map((w) => w >>> 0)).toEqual(jumpState(jumpState(s0, 1_000_000_000), far - 1_000_000_000).map((w) => w >>> 0));
  });

  it('MXFP4 blocks and scales are the bytes of the original sequential generator', () => {
    const config = synthConfig(synthShape('tiny', SMALL));
    const checked: string[] = [];
    for (const t of synthTensors(config).filter((x) => x.layer === 1 && x.dtype === 'U8')) {
      const rng = new Rng(3, t.name);
      const want = new Uint8Array(t.bytes);
      const dist = synthDist(t.param, config);
      if (dist.kind === 'bytes') {
        rng.fillBytes(want);
      } else if (dist.kind === 'e8m0') {
        const { s0, p } = e8m0Mixture(dist.elementStd);
        for (let i = 0; i < want.length; i++) want[i] = rng.uniform() < p ? s0 + 1 : s0;
      } else {
        throw new Error(`unexpected distribution ${dist.kind} for ${t.name}`);
      }
      const got = new Uint8Array(t.bytes);
      new SynthTensorGenerator(t, config, 3).read(0, got);
      expect(Buffer.compare(got, want), `${t.name} (${dist.kind})`).toBe(0);
      checked.push(dist.kind);
    }
    expect(checked.sort()).toEqual(['bytes', 'bytes', 'e8m0', 'e8m0']);
  });

  it('bf16 normal tables have the requested mean and std, symmetric, monotone, tails near 4.3 std', () => {
    for (const [mean, std] of [[0, 1], [1, 0.05], [0, 0.02]] as const) {
      const v = bf16ToF32(new Uint8Array(bf16NormalTable(mean, std).buffer));
      let s = 0;
      let s2 = 0;
      for (const x of v) {
        s += x;
        s2 += (x - mean) ** 2;
      }
      expect(Math.abs(s / v.length - mean), `mean of N(${mean}, ${std})`).toBeLessThan(1e-4 * Math.max(1, Math.abs(mean)));
      expect(Math.abs(Math.sqrt(s2 / v.length) / std - 1), `std of N(${mean}, ${std})`).toBeLessThan(2e-3);
      for (let i = 1; i < v.length; i++) if (v[i]! < v[i - 1]!) throw new Error(`table of N(${mean}, ${std}) decreases at ${i}`);
      const lo = (v[0]! - mean) / std;
      expect(lo, 'lowest quantile in std units').toBeLessThan(-4.2);
      expect(lo).toBeGreaterThan(-4.6);
      if (mean === 0) expect(v[0]).toBe(-v[65535]!);
    }
  });

  it('a generator gives the same bytes whatever the read pattern', () => {
    const config = synthConfig(synthShape('tiny', SMALL));
    for (const t of synthTensors(config).filter((x) => x.layer === 0 || x.param === 'embed')) {
      const whole = new Uint8Array(t.bytes);
      new SynthTensorGenerator(t, config, 8).read(0, whole);
      const gen = new SynthTensorGenerator(t, config, 8);
      // Backwards in uneven pieces: every read but the first jumps.
      const got = new Uint8Array(t.bytes);
      for (let end = t.bytes; end > 0;) {
        const begin = Math.max(0, end - 4097);
        gen.read(begin, got.subarray(begin, end));
        end = begin;
      }
      expect(Buffer.compare(got, whole), `${t.name} read backwards`).toBe(0);
      // Forwards in 1..7-byte pieces: partial words resume from the cursor.
      got.fill(0);
      for (let at = 0, k = 0; at < t.bytes; k++) {
        const n = Math.min(1 + (k % 7), t.bytes - at);
        gen.read(at, got.subarray(at, at + n));
        at += n;
      }
      expect(Buffer.compare(got, whole), `${t.name} read in small pieces`).toBe(0);
    }
  });
});
