/**
 * The integrity check's bookkeeping (loader/integrity.ts) on in-memory files, no GPU: reads out
 * of order (concurrent reads, gaps the loader skips, the tail it never reads), a read behind the
 * hash refused, a cached copy with a verified mark trusted until a read has to go to the
 * network, and the policies 'always' and 'never'.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manifestDigests, type DigestSource } from '../loader/digests.ts';
import { IntegrityError } from '../loader/errors.ts';
import { checkedSource, digestMark } from '../loader/integrity.ts';
import type { ModelSource, SourceCache } from '../loader/source.ts';
import { memorySource } from './helpers/loader-fixtures.ts';

const FILE = 'model.safetensors';
const bytes = (n: number, seed = 7) => {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
};
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const digestsFor = (files: Map<string, Uint8Array>): DigestSource => manifestDigests(new Map([...files].map(([f, b]) => [f, sha(b)])), 'test manifest');

/** Reads [offset, offset+length) and resolves after `delayMs`, so reads can finish out of order. */
function slowSource(inner: ModelSource, delays: Map<number, number>): ModelSource {
  return {
    ...inner,
    async open(file) {
      const f = await inner.open(file);
      return {
        ...f,
        name: f.name,
        size: f.size,
        read: async (o, l) => {
          const b = await f.read(o, l);
          await new Promise((r) => setTimeout(r, delays.get(o) ?? 0));
          return b;
        },
        close: () => f.close(),
      };
    },
  };
}

describe('hashing in file order', () => {
  it('reads finishing out of order wait for the hash (bounded), gaps and the tail are read and hashed by finish()', async () => {
    const data = bytes(10_000);
    const files = new Map([[FILE, data]]);
    // The read at 1000 comes back before the one at 0; 3000..4000 is never read (an unused tensor).
    const src = slowSource(memorySource(files), new Map([[0, 30], [1000, 0]]));
    const c = checkedSource(src, { digests: digestsFor(files), fillChunkBytes: 700 });
    const f = await c.source.open(FILE);
    const [a, b] = await Promise.all([f.read(0, 1000), f.read(1000, 2000)]);
    expect(a).toEqual(data.subarray(0, 1000));
    expect(b).toEqual(data.subarray(1000, 3000));
    await f.read(4000, 2000);
    expect(c.report.hashedBytes, 'the gap 3000..4000 was hashed before the read after it').toBe(6000);
    await c.finish();
    expect(c.report.hashedBytes).toBe(10_000);
    expect(c.report.files[FILE]).toBe('verified');
  });

  it('finish() reports the verify phase', async () => {
    const data = bytes(5000);
    const files = new Map([[FILE, data]]);
    const events: [number, number][] = [];
    const c = checkedSource(memorySource(files), { digests: digestsFor(files), fillChunkBytes: 1000, onVerifyProgress: (p) => events.push([p.bytesDone, p.bytesTotal]) });
    const f = await c.source.open(FILE);
    await f.read(0, 100);
    await c.finish();
    expect(events[0]).toEqual([0, 4900]);
    expect(events.at(-1)).toEqual([4900, 4900]);
  });

  it('a mismatch found by finish(): IntegrityError naming the file and both hashes', async () => {
    const data = bytes(5000);
    const files = new Map([[FILE, data]]);
    const want = sha(data);
    const bad = data.slice();
    bad[4500] ^= 1; // in the tail the loader never reads
    const c = checkedSource(memorySource(new Map([[FILE, bad]])), { digests: manifestDigests(new Map([[FILE, want]]), 'manifest.sha256 beside the model') });
    const f = await c.source.open(FILE);
    await f.read(0, 1000);
    const err = await c.finish().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    const e = err as IntegrityError;
    expect([e.file, e.expected, e.actual, e.algorithm]).toEqual([FILE, want, sha(bad), 'sha256']);
    expect(e.message).toBe(`${FILE}: sha256 is ${sha(bad)}, expected ${want} (from manifest.sha256 beside the model): the file is corrupt or was changed`);
  });

  it('a mismatch found by the read that reaches the end fails that read, and later reads', async () => {
    const data = bytes(3000);
    const bad = data.slice();
    bad[10] ^= 1;
    const c = checkedSource(memorySource(new Map([[FILE, bad]])), { digests: digestsFor(new Map([[FILE, data]])) });
    const f = await c.source.open(FILE);
    await f.read(0, 1000);
    await expect(f.read(1000, 2000)).rejects.toBeInstanceOf(IntegrityError);
    await expect(f.read(0, 10)).rejects.toBeInstanceOf(IntegrityError);
  });

  it('a read behind the hash of an unfinished file is refused, saying why', async () => {
    const data = bytes(3000);
    const files = new Map([[FILE, data]]);
    const c = checkedSource(memorySource(files), { digests: digestsFor(files) });
    const f = await c.source.open(FILE);
    await f.read(0, 2000);
    await expect(f.read(500, 100)).rejects.toThrow(/read at bytes 500\.\.600 after its hash had reached byte 2000.*file order/);
  });

  it('a file read again after a complete check starts a new check (a reload after a device loss)', async () => {
    const data = bytes(3000);
    const files = new Map([[FILE, data]]);
    const c = checkedSource(memorySource(files), { digests: digestsFor(files) });
    const f = await c.source.open(FILE);
    await f.read(0, 3000);
    expect(c.report.hashedBytes).toBe(3000);
    await f.read(1000, 500);
    await c.finish();
    expect(c.report.hashedBytes).toBe(6000);
  });

  it("'never' checks nothing and says nothing; no hash source: one warning", async () => {
    const files = new Map([[FILE, bytes(100)]]);
    const warnings: string[] = [];
    const n = checkedSource(memorySource(files), { digests: digestsFor(files), policy: 'never', onWarning: (m) => warnings.push(m) });
    await (await n.source.open(FILE)).read(0, 100);
    await n.finish();
    expect([n.report.hashedBytes, warnings]).toEqual([0, []]);
    const none = checkedSource(memorySource(files), { onWarning: (m) => warnings.push(m) });
    await (await none.source.open(FILE)).read(0, 100);
    await none.finish();
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/no sha256 .* loaded unchecked/);
  });
});

/** A SourceCache stand-in: marks in a map, and a network counter the test moves. */
function fakeCache(): SourceCache & { marks: Map<string, string>; dropped: string[]; net: number } {
  return {
    marks: new Map(),
    dropped: [],
    net: 0,
    async verifiedMark(file) {
      return this.marks.get(file);
    },
    async markVerified(file, mark) {
      this.marks.set(file, mark);
    },
    async drop(file) {
      this.dropped.push(file);
      this.marks.delete(file);
    },
    networkReads() {
      return this.net;
    },
    get networkBytes() {
      return 0;
    },
  };
}

describe('the download cache', () => {
  const data = bytes(8000);
  const files = new Map([[FILE, data]]);

  function cachedSource(cache: SourceCache, reads: [number, number][]): ModelSource {
    const inner = memorySource(files);
    return {
      ...inner,
      cache,
      async open(file) {
        const f = await inner.open(file);
        return { ...f, name: f.name, size: f.size, read: (o, l) => (reads.push([o, l]), f.read(o, l)), close: () => f.close() };
      },
    };
  }

  it('a verified file gets the mark; a warm load trusts it and hashes nothing', async () => {
    const cache = fakeCache();
    const reads: [number, number][] = [];
    const digests = digestsFor(files);
    const cold = checkedSource(cachedSource(cache, reads), { digests });
    const f = await cold.source.open(FILE);
    await f.read(0, 8000);
    await cold.finish();
    expect(cache.marks.get(FILE)).toBe(digestMark((await digests.digest(FILE))!));
    const warm = checkedSource(cachedSource(cache, reads), { digests });
    const g = await warm.source.open(FILE);
    await g.read(0, 8000);
    await warm.finish();
    expect(warm.report.files[FILE]).toBe('cached');
    expect(warm.report.hashedBytes).toBe(0);
    const always = checkedSource(cachedSource(cache, reads), { digests, policy: 'always' });
    await (await always.source.open(FILE)).read(0, 8000);
    await always.finish();
    expect(always.report.hashedBytes).toBe(8000);
  });

  it('a read that went to the network starts the hash over, re-reading earlier ranges as they were read', async () => {
    const cache = fakeCache();
    const digests = digestsFor(files);
    cache.marks.set(FILE, digestMark((await digests.digest(FILE))!));
    const reads: [number, number][] = [];
    const c = checkedSource(cachedSource(cache, reads), { digests, fillChunkBytes: 5000 });
    const f = await c.source.open(FILE);
    await f.read(0, 8);
    await f.read(8, 1992);
    cache.net++; // the next answer came from the network
    await f.read(2000, 3000);
    expect(reads).toEqual([[0, 8], [8, 1992], [2000, 3000], [0, 8], [8, 1992]]);
    expect(c.report.files[FILE]).toBe('verified');
    await f.read(5000, 3000);
    await c.finish();
    expect(c.report.hashedBytes).toBe(8000);
  });

  it('a mismatch drops the file from the cache and says so', async () => {
    const cache = fakeCache();
    const bad = data.slice();
    bad[3] ^= 1;
    const inner = memorySource(new Map([[FILE, bad]]));
    const c = checkedSource({ ...inner, cache }, { digests: digestsFor(files) });
    const err = await (await c.source.open(FILE)).read(0, 8000).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/copy in the browser cache was dropped/);
    expect(cache.dropped).toEqual([FILE]);
  });
});
