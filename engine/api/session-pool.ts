/**
 * The conversations a chat engine keeps on the GPU: up to `size` sessions, each holding one
 * conversation's KV cache. A request continues the session whose last prompt it repeats (all but
 * a few tokens: the next turn of that conversation), and GpuSession.reuse then keeps the common
 * prefix and prefills only the rest. Otherwise it takes a new session while there is room (so a
 * different conversation, which shares only the rendered preamble, does not overwrite another's
 * cache), or else the session sharing the longest prefix (an edited conversation), or else the
 * least recently used one. Sessions are created on first use.
 */
import type { GpuSession } from '../gpu-session.ts';

export class SessionPool {
  private entries: Entry[] = [];
  private clock = 0;

  constructor(private create: () => GpuSession, readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`the session pool needs at least 1 session, got ${size}`);
  }

  /** Sessions created so far (at most `size`). */
  get count(): number {
    return this.entries.length;
  }

  /** The session to run `prompt` on (see the file comment); the caller then calls session.reuse(prompt). */
  acquire(prompt: readonly number[]): GpuSession {
    let best: Entry | undefined;
    let bestLen = 0;
    for (const e of this.entries) {
      const n = commonPrefix(e.session.tokens, prompt);
      if (n > bestLen) {
        best = e;
        bestLen = n;
      }
    }
    const continues = best !== undefined && bestLen >= best.promptLength - CONTINUATION_SLACK;
    let pick: Entry;
    if (continues) pick = best!;
    else if (this.entries.length < this.size) this.entries.push((pick = { session: this.create(), lastUsed: 0, promptLength: 0 }));
    else pick = best ?? this.entries.reduce((a, e) => (e.lastUsed < a.lastUsed ? e : a));
    pick.lastUsed = ++this.clock;
    pick.promptLength = prompt.length;
    return pick.session;
  }

  /** Drops every session (after a device loss: they lived on the old device) and creates new ones with `create`. */
  replace(create: () => GpuSession): void {
    this.dispose();
    this.create = create;
  }

  dispose(): void {
    for (const e of this.entries) e.session.dispose();
    this.entries = [];
  }
}

interface Entry {
  session: GpuSession;
  lastUsed: number;
  /** Tokens of the last prompt run on it. */
  promptLength: number;
}

/** A next turn repeats the last prompt but for this many tokens at most (where the answer began). */
const CONTINUATION_SLACK = 8;

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
