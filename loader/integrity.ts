/**
 * Checks every byte the loader reads against its published hash (loader/digests.ts), hashing
 * as the bytes arrive: `checkedSource(source, ...)` wraps a ModelSource so that each file's
 * reads feed a streaming sha256 (or Git sha1) in file order.
 *
 * Order. The engine reads a shard's header, then its tensors in file order (engine/upload.ts),
 * so each read normally starts where the hash stopped. A read that starts further on leaves a
 * gap (bytes of tensors the model does not use): if another read of that file still in flight
 * may fill it, a copy of the early read waits (at most `maxAheadBytes` in all); otherwise the
 * gap is read here and hashed, so memory stays bounded by one chunk. A read behind the hash of
 * a file not yet finished is refused: those bytes would escape the check.
 *
 * Guarantee. A file whose last byte has been hashed is compared at once; `finish()` hashes what
 * the loader never read of each file (its tail, unused tensors) and compares the rest. The engine
 * calls finish() before its load returns, inside the upload's error handling, so on a mismatch
 * the weight buffers are destroyed and the load fails with IntegrityError: a model is never
 * handed out with bytes that were not checked. (Checking each file completely before uploading
 * it would need a second pass over multi-GB shards, downloading them twice or holding them in
 * memory.)
 *
 * Download cache. A file whose check passes is marked verified in the browser cache; a later
 * load with the same expected hash trusts the cached copy without hashing (policy 'auto') as
 * long as every read is served from the cache. The first read that had to go to the network
 * (an entry missing or evicted) starts the hash over from byte 0, re-reading earlier ranges
 * (from the cache) in the same pieces they were read before. A mismatch drops the file's entries.
 */
import type { Digest, DigestSource } from './digests.ts';
import { IntegrityError } from './errors.ts';
import { Sha1 } from './sha1.ts';
import { Sha256 } from './sha256.ts';
import type { ByteSource, ModelSource, SourceCache } from './source.ts';

/** 'auto': hash unless the cache holds a verified copy; 'always': hash every load; 'never': no check. */
export type VerifyPolicy = 'auto' | 'always' | 'never';

export interface IntegrityOptions {
  /** The expected hashes; none: nothing is checked and `onWarning` says so once. */
  digests?: DigestSource;
  policy?: VerifyPolicy;
  /** Progress of the hashing finish() does itself (the 'verify' phase). */
  onVerifyProgress?: (p: { file?: string; bytesDone: number; bytesTotal: number }) => void;
  /** Called once, by finish(): no hash source at all, or the files it has no hash for. */
  onWarning?: (message: string) => void;
  /** Copies of reads that arrived ahead of the hash, kept at most (default 64 MiB). */
  maxAheadBytes?: number;
  /** Size of the reads that fill gaps (default 8 MiB). */
  fillChunkBytes?: number;
}

/** 'verified': hashed and equal; 'cached': the cache's verified copy was used; 'unchecked': no hash for it. */
export type FileStatus = 'verified' | 'cached' | 'unchecked';

export interface IntegrityReport {
  /** Where the expected hashes came from; undefined when there were none. */
  hashSource?: string;
  files: Record<string, FileStatus>;
  /** Bytes hashed (reads, gap fills and re-checks). */
  hashedBytes: number;
}

export interface CheckedSource {
  readonly source: ModelSource;
  /** Hashes what the loader did not read of each file read so far and compares; throws IntegrityError. */
  finish(): Promise<void>;
  readonly report: IntegrityReport;
}

/** The form of a verified mark in the download cache. */
export function digestMark(d: Digest): string {
  return `${d.algorithm}:${d.hex}`;
}

interface Context {
  readonly report: IntegrityReport;
  readonly maxAhead: number;
  readonly chunk: number;
  aheadBytes: number;
  failure?: Error;
  fail(e: Error): void;
}

export function checkedSource(inner: ModelSource, o: IntegrityOptions = {}): CheckedSource {
  const policy = o.policy ?? 'auto';
  if (policy !== 'auto' && policy !== 'always' && policy !== 'never') {
    throw new RangeError(`verify must be 'auto', 'always' or 'never', got ${JSON.stringify(policy)}`);
  }
  const report: IntegrityReport = { hashSource: o.digests?.description, files: {}, hashedBytes: 0 };
  const checks = new Set<FileCheck>();
  const ctx: Context = {
    report,
    maxAhead: o.maxAheadBytes ?? 64 << 20,
    chunk: o.fillChunkBytes ?? 8 << 20,
    aheadBytes: 0,
    fail(e) {
      this.failure ??= e;
    },
  };
  let warned = false;
  const warn = (msg: string) => {
    if (warned) return;
    warned = true;
    (o.onWarning ?? ((m: string) => console.warn(m)))(msg);
  };
  const digests = policy === 'never' ? undefined : o.digests;

  const source: ModelSource = {
    description: inner.description,
    digests: inner.digests,
    cache: inner.cache,
    exists: (file) => inner.exists(file),
    async open(file) {
      const d = digests && (await digests.digest(file));
      if (!d) {
        if (digests) report.files[file] ??= 'unchecked';
        return inner.open(file);
      }
      const cache = inner.cache;
      const trusted = policy === 'auto' && cache !== undefined && (await cache.verifiedMark(file).catch(() => undefined)) === digestMark(d);
      const netBase = cache?.networkReads(file) ?? 0;
      const bs = await inner.open(file);
      const check = new FileCheck(bs, d, ctx, trusted ? cache : undefined, netBase, cache);
      checks.add(check);
      return check.byteSource(() => checks.delete(check));
    },
  };

  return {
    source,
    report,
    async finish() {
      const open = [...checks].filter((c) => c.needsFinish);
      let total = 0;
      for (const c of open) total += await c.remaining();
      let done = 0;
      o.onVerifyProgress?.({ bytesDone: 0, bytesTotal: total });
      for (const c of open) {
        await c.complete((n) => {
          done += n;
          o.onVerifyProgress?.({ file: c.file, bytesDone: done, bytesTotal: total });
        });
      }
      if (ctx.failure) throw ctx.failure;
      // Said once the load has worked: a failing load has a better thing to say.
      if (policy !== 'never' && !digests) {
        warn(`no sha256 to check the model's files against (no manifest option, no manifest.sha256 beside the files, not a Hugging Face repo): ${inner.description} is loaded unchecked`);
      }
      const unchecked = Object.entries(report.files).filter(([, s]) => s === 'unchecked').map(([f]) => f);
      if (unchecked.length) warn(`${report.hashSource} has no hash for ${unchecked.join(', ')}: ${unchecked.length === 1 ? 'it is' : 'they are'} loaded unchecked`);
    },
  };
}

type Hasher = { update(b: Uint8Array): unknown; hex(): string };

function newHasher(d: Digest, size: number): Hasher {
  if (d.algorithm === 'sha256') return new Sha256();
  return new Sha1().update(new TextEncoder().encode(`blob ${size}\0`));
}

/** The check of one opened file: its hash, where it has got to, and reads waiting for it. */
class FileCheck {
  private mode: 'trusted' | 'hashing' | 'done' | 'failed' | 'closed';
  private hasher: Hasher;
  private cursor = 0;
  private handedOut = false;
  private readonly ahead: { offset: number; bytes: Uint8Array }[] = [];
  /** Reads whose bytes have not been taken in yet (their offsets). */
  private readonly pending = new Set<{ offset: number }>();
  /** Ranges read while trusting the cache: a restarted hash re-reads them the same way (cache hits). */
  private readonly trustedReads: [number, number][] = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly inner: ByteSource,
    private readonly d: Digest,
    private readonly ctx: Context,
    private readonly trust: SourceCache | undefined,
    private readonly netBase: number,
    private readonly cache: SourceCache | undefined,
  ) {
    this.mode = trust ? 'trusted' : 'hashing';
    this.hasher = newHasher(d, inner.size);
    ctx.report.files[this.file] = trust ? 'cached' : 'verified';
  }

  get file(): string {
    return this.inner.name;
  }

  /** Bytes were handed out and the hash has not reached the end. */
  get needsFinish(): boolean {
    return this.handedOut && (this.mode === 'hashing' || this.mode === 'closed');
  }

  async remaining(): Promise<number> {
    await this.chain.catch(() => {});
    return this.mode === 'hashing' ? this.inner.size - this.cursor : 0;
  }

  /** finish(): hashes to the end of the file and compares. */
  async complete(onBytes: (n: number) => void): Promise<void> {
    if (this.mode === 'closed') {
      this.ctx.fail(new Error(`internal: ${this.file} was closed before the check of the bytes read from it was complete`));
      return;
    }
    await this.serial(async () => {
      if (this.mode !== 'hashing') return;
      await this.advanceTo(this.inner.size, onBytes);
      await this.finalize();
    }).catch((e: Error) => this.ctx.fail(e));
  }

  byteSource(onClose: () => void): ByteSource {
    const self = this;
    const bs: ByteSource = {
      name: this.inner.name,
      size: this.inner.size,
      read: (offset, length) => this.read(offset, length, () => this.inner.read(offset, length)),
      async close() {
        if (self.mode === 'hashing' && self.handedOut && self.cursor < self.inner.size) self.mode = 'closed';
        else onClose();
        await self.inner.close();
      },
    };
    const readInto = this.inner.readInto?.bind(this.inner);
    if (readInto) {
      bs.readInto = async (offset, out) => {
        await this.read(offset, out.length, async () => {
          await readInto(offset, out);
          return out;
        });
      };
    }
    return bs;
  }

  private serial<T>(step: () => Promise<T>): Promise<T> {
    const p = this.chain.then(step, step);
    this.chain = p.catch(() => {});
    return p;
  }

  private async read(offset: number, length: number, get: () => Promise<Uint8Array>): Promise<Uint8Array> {
    if (this.mode === 'failed') throw this.ctx.failure;
    const token = { offset };
    this.pending.add(token);
    let bytes: Uint8Array;
    try {
      bytes = await get();
    } catch (e) {
      this.pending.delete(token);
      throw e;
    }
    if (this.mode === 'trusted') {
      if (this.trust!.networkReads(this.file) === this.netBase) {
        this.pending.delete(token);
        this.trustedReads.push([offset, bytes.length]);
        return bytes;
      }
      // Part of the file came from the network, not the verified cache: check it all.
      this.mode = 'hashing';
      this.ctx.report.files[this.file] = 'verified';
    }
    await this.serial(() => this.take(token, offset, bytes));
    return bytes;
  }

  /** Takes in the bytes of one read, in file order. */
  private async take(token: { offset: number }, offset: number, bytes: Uint8Array): Promise<void> {
    this.pending.delete(token);
    if (this.mode === 'failed') throw this.ctx.failure;
    if (this.mode === 'done' && bytes.length > 0) {
      // Read again after a complete check (the weights reloaded after a GPU loss): a new pass.
      this.mode = 'hashing';
      this.hasher = newHasher(this.d, this.inner.size);
      this.cursor = 0;
    }
    if (this.mode !== 'hashing') return;
    this.handedOut = true;
    if (offset < this.cursor) throw this.orderError(offset, bytes.length);
    if (offset > this.cursor) {
      const mayFill = [...this.pending].some((p) => p.offset >= this.cursor && p.offset < offset);
      if (mayFill && this.ctx.aheadBytes + bytes.length <= this.ctx.maxAhead) {
        this.ahead.push({ offset, bytes: bytes.slice() });
        this.ahead.sort((a, b) => a.offset - b.offset);
        this.ctx.aheadBytes += bytes.length;
        return;
      }
      await this.advanceTo(offset);
    }
    this.hash(bytes);
    await this.advanceTo(this.cursor);
    if (this.cursor === this.inner.size) await this.finalize();
  }

  /**
   * Hashes up to `to`: reads that arrived early as the hash reaches them, and the gaps between
   * them read here (in the pieces read while trusting the cache, where there were some).
   */
  private async advanceTo(to: number, onBytes?: (n: number) => void): Promise<void> {
    for (;;) {
      const next = this.ahead[0];
      if (next && next.offset < this.cursor) throw this.orderError(next.offset, next.bytes.length);
      if (next && next.offset === this.cursor) {
        this.ahead.shift();
        this.ctx.aheadBytes -= next.bytes.length;
        this.hash(next.bytes);
        onBytes?.(next.bytes.length);
        continue;
      }
      if (this.cursor >= to) return;
      let end = Math.min(to, next?.offset ?? Infinity, this.cursor + this.ctx.chunk);
      const known = this.trustedReads.find(([o, n]) => o <= this.cursor && o + n > this.cursor);
      if (known && known[0] === this.cursor) end = Math.min(to, next?.offset ?? Infinity, known[0] + known[1]);
      else {
        const upcoming = this.trustedReads.find(([o]) => o > this.cursor && o < end);
        if (upcoming) end = upcoming[0];
      }
      const bytes = await this.inner.read(this.cursor, end - this.cursor);
      this.hash(bytes);
      onBytes?.(bytes.length);
    }
  }

  private hash(bytes: Uint8Array): void {
    this.hasher.update(bytes);
    this.cursor += bytes.length;
    this.ctx.report.hashedBytes += bytes.length;
  }

  private async finalize(): Promise<void> {
    const actual = this.hasher.hex();
    if (actual === this.d.hex) {
      this.mode = 'done';
      this.trustedReads.length = 0;
      await this.cache?.markVerified(this.file, digestMark(this.d)).catch(() => {});
      return;
    }
    this.mode = 'failed';
    let note = '';
    if (this.cache) {
      await this.cache.drop(this.file).catch(() => {});
      note = '; its copy in the browser cache was dropped';
    }
    const e = new IntegrityError(this.file, this.d.algorithm, this.d.hex, actual, this.d.from, note);
    this.ctx.fail(e);
    throw e;
  }

  private orderError(offset: number, length: number): Error {
    const e = new Error(
      `internal: ${this.file} was read at bytes ${offset}..${offset + length} after its hash had reached byte ${this.cursor}: ` +
        'a file being verified must be read in file order (engine/upload.ts)',
    );
    this.mode = 'failed';
    this.ctx.fail(e);
    return e;
  }
}
