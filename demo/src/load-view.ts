/**
 * The load's progress in its phases (the engine's tokenizer, compile, weights, verify), each
 * with its own bar, and for the phases that read bytes the rate and time left measured from that
 * phase's own bytes and time, so that a slow phase does not skew another's estimate.
 */
import type { ProgressInfo } from './protocol.ts';
import { $, fmtBytes, fmtSeconds, h } from './dom.ts';

type Phase = NonNullable<ProgressInfo['phase']>;

const PHASES: Record<Phase, string> = {
  tokenizer: 'Tokenizer',
  compile: 'Shader compilation',
  weights: 'Weights',
  verify: 'Verification (sha256)',
};

/** A phase's first event: the clock and bytes its rate is measured from. */
interface Start { t: number; bytes: number }

export class LoadView {
  private starts = new Map<Phase, Start>();
  private rows = new Map<Phase, { li: HTMLLIElement; bar: HTMLProgressElement; text: HTMLElement }>();
  /** Bytes per file of the phases that read several (tokenizer.json and tokenizer_config.json; each shard hashed). */
  private files = new Map<Phase, Map<string, { done: number; total: number }>>();
  /** The phases seen, in order (window.__demo.phases). */
  readonly phases: Phase[] = [];

  /** Starts a new load: every phase waiting. */
  begin(what: string): void {
    this.starts.clear();
    this.files.clear();
    this.phases.length = 0;
    const list = $('phases');
    list.replaceChildren();
    this.rows.clear();
    for (const phase of Object.keys(PHASES) as Phase[]) {
      const bar = h('progress');
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute('aria-label', `${PHASES[phase]} progress`);
      const text = h('span', 'phase-text', 'waiting');
      const li = h('li', 'phase waiting', h('span', 'phase-name', PHASES[phase]), bar, text);
      li.dataset.phase = phase;
      list.append(li);
      this.rows.set(phase, { li, bar, text });
    }
    list.hidden = false;
    const overall = $<HTMLProgressElement>('progress');
    overall.max = 1;
    overall.value = 0;
    this.status(what);
  }

  /** One progress event. */
  update(event: ProgressInfo, now = performance.now()): void {
    if (!event.phase) return;
    const phase = event.phase;
    const p = this.summed(phase, event);
    if (this.phases.at(-1) !== phase) {
      // Earlier phases are done once a later one reports.
      for (const prev of this.phases) this.done(prev);
      this.phases.push(phase);
      this.status(`Loading: ${PHASES[phase].toLowerCase()}…`);
    }
    if (!this.starts.has(phase)) this.starts.set(phase, { t: now, bytes: p.bytesDone });
    const row = this.rows.get(phase)!;
    row.li.className = 'phase active';
    row.bar.max = p.bytesTotal || 1;
    row.bar.value = p.bytesDone;
    const pct = Math.round((100 * p.bytesDone) / (p.bytesTotal || 1));
    let line: string;
    if (phase === 'compile') {
      line = p.bytesDone >= p.bytesTotal ? 'done' : 'compiling the kernels…';
    } else if (phase === 'verify' && p.bytesTotal === 0) {
      line = 'nothing to check: no hashes for these files';
    } else {
      const s = this.starts.get(phase)!;
      const secs = (now - s.t) / 1000;
      const rate = secs > 0.5 ? (p.bytesDone - s.bytes) / secs : 0;
      const left = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : Infinity;
      line = `${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)} (${pct}%)` +
        (rate > 0 && p.bytesDone < p.bytesTotal ? `, ${fmtBytes(rate)}/s, ${fmtSeconds(left)} left` : '') +
        (p.fromCache ? ', from the browser cache' : '');
    }
    row.text.textContent = line;
    if (phase === 'weights') {
      const overall = $<HTMLProgressElement>('progress');
      overall.max = p.bytesTotal || 1;
      overall.value = p.bytesDone;
      $('progress-text').textContent = `${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)} of weights (${pct}%); ` +
        `downloaded ${fmtBytes(p.networkBytes ?? 0)}, from cache ${fmtBytes(p.cachedBytes ?? 0)}`;
    } else if (phase !== 'verify') {
      $('progress-text').textContent = `${PHASES[phase]}: ${line}`;
    }
  }

  /** The load ended: `text` says how; every phase seen is done. */
  end(text: string, ok: boolean): void {
    if (ok) {
      for (const p of this.phases) this.done(p);
      const overall = $<HTMLProgressElement>('progress');
      overall.max = 1;
      overall.value = 1;
    } else {
      const last = this.phases.at(-1);
      if (last) this.rows.get(last)!.li.className = 'phase failed';
    }
    $('progress-text').textContent = text;
    this.status(text);
  }

  /** The announced load status (a polite live region). */
  status(text: string): void {
    $('load-status').textContent = text;
  }

  /** The event with the bytes of every file of its phase so far (one file's bytes otherwise). */
  private summed(phase: Phase, p: ProgressInfo): ProgressInfo {
    if (phase === 'weights' || phase === 'compile' || p.file === undefined) return p;
    let files = this.files.get(phase);
    if (!files) this.files.set(phase, (files = new Map()));
    files.set(p.file, { done: p.bytesDone, total: p.bytesTotal });
    let done = 0, total = 0;
    for (const f of files.values()) {
      done += f.done;
      total += f.total;
    }
    return { ...p, bytesDone: done, bytesTotal: total };
  }

  private done(phase: Phase): void {
    const row = this.rows.get(phase)!;
    row.li.className = 'phase done';
    row.bar.value = row.bar.max;
    if (phase === 'compile') row.text.textContent = 'done';
  }
}
