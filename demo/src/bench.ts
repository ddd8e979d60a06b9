/** The benchmark page: plain DOM, the measuring in bench-worker.ts. */
import type { KernelTime, Stats, StepTiming } from '../../bench/decode-prefill.ts';
import type { BenchAdapter, BenchProgress, BenchReport, BenchRunOptions, FromBenchWorker, ToBenchWorker } from './bench-protocol.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

declare global {
  interface Window {
    /** State for tests and curious users: the last run's report or error, and the adapter. */
    __bench: { result?: BenchReport; error?: string; running: boolean; adapter?: BenchAdapter; adapterError?: string };
  }
}
window.__bench = { running: false };

const GPU_HINT = 'Use a browser with WebGPU (recent Chrome or Edge, Safari 26, Firefox 141+ on Windows), ' +
  'or `gptoss bench` from the npm package on a machine with a GPU.';

// ---- the worker --------------------------------------------------------------------------

type Request = ToBenchWorker extends infer T ? (T extends ToBenchWorker ? Omit<T, 'id'> : never) : never;
interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: BenchProgress) => void;
}
const worker = new Worker(new URL('./bench-worker.ts', import.meta.url), { type: 'module' });
const pending = new Map<number, Pending>();
let nextId = 1;
worker.onmessage = (ev: MessageEvent<FromBenchWorker>) => {
  const m = ev.data;
  const p = pending.get(m.id);
  if (!p) return;
  if (m.type === 'progress') return p.onProgress?.(m.progress);
  pending.delete(m.id);
  if (m.type === 'result') return p.resolve(m.value);
  const err = new Error(m.error.message);
  err.name = m.error.name;
  p.reject(err);
};
worker.onerror = (ev) => {
  // A worker that fails to start (script error) never answers: fail whatever waits on it.
  const err = new Error(`the benchmark worker failed: ${ev.message || 'script error'}`);
  for (const p of pending.values()) p.reject(err);
  pending.clear();
};

function call<T>(msg: Request, onProgress?: (p: BenchProgress) => void): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
    worker.postMessage({ ...msg, id } as ToBenchWorker);
  });
}

// ---- formatting ---------------------------------------------------------------------------

const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);
/** Three significant digits: rates span 0.1 to 10^4 across devices. */
const sig = (v: number) => String(Number(v.toPrecision(3)));
const ms1 = (v: number) => v.toFixed(1);
const yes = (b: boolean) => (b ? 'yes' : 'no');

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function notice(text: string, error = false): void {
  const n = $('notice');
  n.hidden = !text;
  n.textContent = text;
  n.classList.toggle('error', error);
}

function explain(e: Error): string {
  switch (e.name) {
    case 'GpuUnavailableError':
      return `WebGPU is not available here, so the benchmark cannot run: ${e.message}\n${GPU_HINT}`;
    case 'ModelTooLargeError':
      return `This GPU does not have enough memory for the model: ${e.message}\nTry a smaller context, the f32 → q8 KV cache, or a smaller model.`;
    case 'ModelLoadError':
      return `Loading the model failed: ${e.message}`;
    default:
      return `The benchmark failed: ${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`;
  }
}

// ---- environment --------------------------------------------------------------------------

function showAdapter(a: BenchAdapter | undefined, error?: string): void {
  const body = $('adapter');
  body.replaceChildren();
  const row = (name: string, value: string, id?: string) => {
    const tr = body.appendChild(el('tr'));
    tr.appendChild(el('th', name));
    tr.appendChild(el('td', value, id ? { id } : {}));
  };
  if (!a) return row('Adapter', error ?? 'unknown', 'adapter-summary');
  const has = (f: string) => a.features.includes(f);
  row('Adapter', [a.vendor, a.architecture, a.description].filter(Boolean).join(' · ') || '(the browser reports no names)', 'adapter-summary');
  row('Vendor / architecture', `${a.vendor || '(empty)'} / ${a.architecture || '(empty)'}`);
  row('Description', a.description || '(empty)');
  row('Fallback (CPU) adapter', a.fallback ? 'yes: a software implementation, far slower than a GPU' : 'no', 'adapter-fallback');
  row('Key features', `shader-f16 ${yes(has('shader-f16'))}${a.f16 ? ' (used)' : ''}, subgroups ${yes(has('subgroups'))}, timestamp-query ${yes(has('timestamp-query'))}`, 'adapter-features');
  row('All features', a.features.join(', ') || 'none');
  row('Limits', `maxBufferSize ${fmtBytes(a.maxBufferSize)} (${a.maxBufferSize}), ` +
    `maxStorageBufferBindingSize ${fmtBytes(a.maxStorageBufferBindingSize)} (${a.maxStorageBufferBindingSize}), ` +
    `maxComputeWorkgroupStorageSize ${a.maxComputeWorkgroupStorageSize} bytes`, 'adapter-limits');
}

function showEnvironment(date: Date): void {
  $('browser').textContent = navigator.userAgent;
  $('date').textContent = date.toISOString();
}

// ---- results ------------------------------------------------------------------------------

function statsRow(tbody: HTMLElement, key: string, label: string, s: Stats, f: (v: number) => string): void {
  const tr = tbody.appendChild(el('tr', undefined, { 'data-row': key }));
  tr.appendChild(el('th', label));
  for (const v of [s.median, s.min, s.max]) tr.appendChild(el('td', f(v), { class: 'num' }));
  tr.appendChild(el('td', s.runs.map(f).join(', '), { class: 'runs' }));
}

function kernelTable(caption: string, rows: KernelTime[], step: StepTiming): HTMLTableElement {
  const t = el('table');
  t.appendChild(el('caption', `${caption}: kernels ${step.gpuUs.toFixed(0)} µs of GPU time` +
    (step.wallUs === undefined ? '' : `, the step ${step.wallUs.toFixed(0)} µs wall`)));
  const head = t.appendChild(el('thead')).appendChild(el('tr'));
  for (const h of ['kernel', 'n', 'µs', 'GB/s', '%']) head.appendChild(el('th', h));
  const body = t.appendChild(el('tbody'));
  for (const r of rows) {
    const tr = body.appendChild(el('tr'));
    tr.appendChild(el('td', r.kernel));
    tr.appendChild(el('td', String(r.count), { class: 'num' }));
    tr.appendChild(el('td', r.us.toFixed(1), { class: 'num' }));
    tr.appendChild(el('td', r.gbps === undefined ? '-' : sig(r.gbps), { class: 'num' }));
    tr.appendChild(el('td', r.percent.toFixed(1), { class: 'num' }));
  }
  return t;
}

function showResults(rep: BenchReport): void {
  const r = rep.result;
  const box = $('results');
  box.replaceChildren();
  const t = box.appendChild(el('table', undefined, { id: 'results-table' }));
  t.appendChild(el('caption', `Results: ${r.repeat} timed repeat${r.repeat === 1 ? '' : 's'} after 1 warm-up`));
  const head = t.appendChild(el('thead')).appendChild(el('tr'));
  head.appendChild(el('th', ''));
  for (const h of ['median', 'min', 'max']) head.appendChild(el('th', h, { class: 'num' }));
  head.appendChild(el('th', 'each run'));
  const body = t.appendChild(el('tbody'));
  statsRow(body, 'prefill-tps', `Prefill tokens/s (${r.promptLen}-token prompt)`, r.prefill.tokensPerSecond, sig);
  statsRow(body, 'prefill-ms', `Prefill ms, up to the first token`, r.prefill.ms, ms1);
  statsRow(body, 'decode-tps', `Decode tokens/s (${r.gen} tokens)`, r.decode.tokensPerSecond, sig);
  statsRow(body, 'decode-ms', `Decode ms for ${r.gen} tokens`, r.decode.ms, ms1);
  statsRow(body, 'weight-gbps', 'Weight GB/s (estimate)', r.decode.weightGBps, sig);
  const info = box.appendChild(el('div', undefined, { id: 'model-info', class: 'hint' }));
  const b = rep.decodeWeightBytes;
  info.textContent =
    `Model ${rep.model.source}: ${rep.model.description}; ${fmtBytes(rep.model.weightBytes)} of weights; ` +
    `KV cache ${rep.kvFormat}, context ${rep.context}, prefill batch ${rep.maxBatch}. ` +
    `Weight GB/s = ${fmtBytes(b.total)} of weights read per decoded token × tokens/s (KV cache and activations left out). ` +
    (rep.load.reused ? 'The model was already loaded from the previous run.' :
      `Loaded in ${rep.load.seconds.toFixed(1)} s (downloaded ${fmtBytes(rep.load.networkBytes)}, from the cache ${fmtBytes(rep.load.cachedBytes)}).`);
  if (r.profile) {
    const p = box.appendChild(el('div', undefined, { id: 'profile', class: 'profile' }));
    p.appendChild(el('p', 'Per-kernel GPU time (timestamps around each kernel\'s pass, one command buffer per step):', { class: 'hint' }));
    p.appendChild(kernelTable(`Prefill batch of ${r.profile.prefillTokens} tokens`, r.profile.prefill, r.profile.prefillStep));
    p.appendChild(kernelTable('One decode token', r.profile.decode, r.profile.decodeStep));
  }
}

// ---- the page -----------------------------------------------------------------------------

/** Paths on this site (./x, /x, x/) become absolute URLs; `owner/name` stays a Hugging Face repo id (as on the chat page). */
function modelInput(v: string): string {
  if (/^https?:\/\//i.test(v)) return v;
  if (/^\.{0,2}\//.test(v) || v.endsWith('/')) return new URL(v, location.href).toString();
  return v;
}

function readOptions(): BenchRunOptions {
  const int = (id: string, name: string, optional = false): number | undefined => {
    const raw = $<HTMLInputElement>(id).value.trim();
    if (raw === '' && optional) return undefined;
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number of at least 1, got ${JSON.stringify(raw)}`);
    return v;
  };
  const o: BenchRunOptions = {
    promptLen: int('prompt-len', 'Prompt tokens')!,
    gen: int('gen', 'Generated tokens')!,
    repeat: int('repeat', 'Repeats')!,
    kvFormat: $<HTMLSelectElement>('kv').value === 'f32' ? 'f32' : 'q8',
    contextLimit: int('context', 'Context', true),
    profile: $<HTMLInputElement>('profile').checked,
    cache: $<HTMLInputElement>('cache').checked,
  };
  if (o.contextLimit !== undefined && o.promptLen + o.gen > o.contextLimit) {
    throw new RangeError(`Prompt tokens ${o.promptLen} + generated tokens ${o.gen} exceed the context ${o.contextLimit}: raise the context.`);
  }
  return o;
}

async function runBench(model: string | FileSystemDirectoryHandle): Promise<void> {
  if (window.__bench.running) return;
  let options: BenchRunOptions;
  try {
    options = readOptions();
  } catch (e) {
    window.__bench.error = (e as Error).message;
    return notice((e as Error).message, true);
  }
  notice('');
  window.__bench = { ...window.__bench, result: undefined, error: undefined, running: true };
  $<HTMLButtonElement>('run').disabled = true;
  $<HTMLButtonElement>('pick').disabled = true;
  $<HTMLButtonElement>('copy').disabled = true;
  $('results').replaceChildren();
  $('json').textContent = '(running)';
  $('copy-status').textContent = '';
  const bar = $<HTMLProgressElement>('progress');
  const text = $('progress-text');
  bar.max = 1;
  bar.value = 0;
  text.textContent = 'Starting…';
  const t0 = performance.now();
  const onProgress = (p: BenchProgress) => {
    if (p.phase === 'download') {
      bar.max = p.bytesTotal || 1;
      bar.value = p.bytesDone;
      const s = (performance.now() - t0) / 1000;
      text.textContent = `Loading ${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)} (${Math.round((100 * p.bytesDone) / (p.bytesTotal || 1))}%), ` +
        `${fmtBytes(p.bytesDone / Math.max(s, 1e-3))}/s; downloaded ${fmtBytes(p.networkBytes)}, from the cache ${fmtBytes(p.cachedBytes)}`;
    } else {
      bar.removeAttribute('value'); // indeterminate while measuring
      text.textContent = `Benchmark: ${p.message}…`;
    }
  };
  try {
    const rep = await call<BenchReport>({ type: 'run', model, options }, onProgress);
    window.__bench.result = rep;
    window.__bench.adapter = rep.adapter;
    showAdapter(rep.adapter);
    showEnvironment(new Date(rep.date));
    showResults(rep);
    $('json').textContent = JSON.stringify(rep, null, 2);
    $<HTMLButtonElement>('copy').disabled = false;
    if (rep.load.quotaWarning) notice(rep.load.quotaWarning);
    bar.max = 1;
    bar.value = 1;
    text.textContent = `Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`;
  } catch (e) {
    const err = e as Error;
    window.__bench.error = `${err.name}: ${err.message}`;
    notice(explain(err), true);
    bar.max = 1;
    bar.value = 0;
    text.textContent = 'Failed.';
    $('json').textContent = '(no result)';
  } finally {
    window.__bench.running = false;
    $<HTMLButtonElement>('run').disabled = false;
    $<HTMLButtonElement>('pick').disabled = false;
  }
}

$('run').onclick = () => void runBench(modelInput($<HTMLInputElement>('model').value.trim()));
$('pick').onclick = async () => {
  const pick = (window as unknown as { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
  if (!pick) return notice('This browser cannot open local folders (no showDirectoryPicker); use a URL instead.');
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await pick();
  } catch {
    return; // the picker was cancelled
  }
  await runBench(dir);
};
$('copy').onclick = async () => {
  const json = JSON.stringify(window.__bench.result, null, 2);
  try {
    await navigator.clipboard.writeText(json);
    $('copy-status').textContent = 'Copied.';
  } catch (e) {
    $('copy-status').textContent = `Could not copy (${(e as Error).message}); the JSON is below.`;
    $('json').parentElement!.setAttribute('open', '');
  }
};

// Link to the chat page with the same model.
const syncChatLink = () => {
  const v = $<HTMLInputElement>('model').value.trim();
  $<HTMLAnchorElement>('chat-link').href = v ? `./index.html?model=${encodeURIComponent(v)}` : './index.html';
};
$('model').addEventListener('input', syncChatLink);

// ?model= (like the chat page) and the workload fields by id, e.g. bench.html?model=...&prompt-len=512&kv=f32
const params = new URLSearchParams(location.search);
for (const id of ['model', 'prompt-len', 'gen', 'repeat', 'kv', 'context']) {
  const v = params.get(id);
  if (v !== null) ($(id) as HTMLInputElement | HTMLSelectElement).value = v;
}
if (params.has('profile')) $<HTMLInputElement>('profile').checked = params.get('profile') !== '0';
syncChatLink();
showEnvironment(new Date());

if (!('gpu' in navigator)) {
  const msg = 'navigator.gpu is missing in this browser';
  window.__bench.adapterError = msg;
  showAdapter(undefined, `none: ${msg}`);
  notice(`WebGPU is not available in this browser (${msg}), so the benchmark cannot run.\n${GPU_HINT}`, true);
  $<HTMLButtonElement>('run').disabled = true;
  $<HTMLButtonElement>('pick').disabled = true;
} else {
  call<BenchAdapter>({ type: 'adapter' }).then(
    (a) => {
      window.__bench.adapter ??= a;
      if (!window.__bench.result) showAdapter(a);
    },
    (e: Error) => {
      window.__bench.adapterError = `${e.name}: ${e.message}`;
      showAdapter(undefined, `none: ${e.message}`);
      notice(explain(e), true);
    },
  );
}
