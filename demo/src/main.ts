/** The chat page: plain DOM, the engine in a worker through the library's createWorkerEngine. */
import {
  createWorkerEngine, deleteModelFromCache, DeviceLostError, GpuUnavailableError, listCachedModels, ModelTooLargeError,
  type AdapterSummary, type ChatMessageParam, type Engine, type LoadProgress,
} from '../../index.ts';
import { parseBytes } from '../../cli/args.ts';
import { cacheSize, clearCache } from '../../loader/source-cache.ts';
import type { DemoMessage, DemoModel, FallbackEndpoint, LoadInfo, LoadOptions, LoadStats, ProgressInfo } from './protocol.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
let engine: Engine | undefined;
/** The download statistics the worker sends at the end of a load. */
let lastStats: LoadStats | undefined;
worker.addEventListener('message', (ev: MessageEvent<DemoMessage>) => {
  if (ev.data?.demo === 'notice') notice(ev.data.text);
  else if (ev.data?.demo === 'loaded') lastStats = ev.data.stats;
});
const history: ChatMessageParam[] = [];
let running: AbortController | undefined;

declare global {
  interface Window {
    /** State for tests and curious users. */
    __demo: {
      loaded?: LoadInfo; loadError?: string; generating: boolean; lastAnswer: string; progressEvents: number; chunks: number;
      /** Whether the page found a WebGPU adapter (undefined while it looks). */
      webgpu?: boolean;
      /** Every notice shown, oldest first. */
      notices: string[];
      /** The DeviceLostError's message while the GPU device is lost (until the model is reloaded). */
      deviceLost?: string;
      /** The load progress phases seen, in order. */
      phases: string[];
    };
  }
}
window.__demo = { generating: false, lastAnswer: '', progressEvents: 0, chunks: 0, notices: [], phases: [] };

const PHASES = { tokenizer: 'Reading the tokenizer', compile: 'Compiling the kernels', weights: 'Loading the weights', verify: 'Checking the files\' sha256' } as const;

const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

/** The banner; `offerFallback` adds a button that loads through the fallback endpoint, `offerRecover` one that reloads after a device loss. */
function notice(text: string, error = false, offerFallback = false, offerRecover = false): void {
  if (text) window.__demo.notices.push(text);
  const el = $('notice');
  el.hidden = !text;
  $('notice-text').textContent = text;
  el.classList.toggle('error', error);
  $('use-fallback').hidden = !offerFallback;
  $('recover').hidden = !offerRecover;
}

/** The GPU device was lost (driver reset, the browser reclaimed it): say so and offer to reload. */
function deviceLost(e: DeviceLostError): void {
  window.__demo.deviceLost = e.message;
  $<HTMLButtonElement>('send').disabled = true;
  notice(`The GPU device was lost (${e.reason}${e.deviceMessage ? `: ${e.deviceMessage}` : ''}). ` +
    'Reload the model onto a new device to go on chatting (from the browser\'s cache when it was cached).', true, false, true);
}

async function recover(): Promise<void> {
  $<HTMLButtonElement>('recover').disabled = true;
  notice('Reloading the model onto a new GPU device…', false, false, true);
  const bar = $<HTMLProgressElement>('progress');
  try {
    await engine!.recover({
      onProgress: (p) => {
        bar.max = p.bytesTotal || 1;
        bar.value = p.bytesDone;
        $('progress-text').textContent = `Reloading: ${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)}`;
      },
    });
    window.__demo.deviceLost = undefined;
    notice('');
    $('progress-text').textContent = 'Reloaded onto a new GPU device.';
    $<HTMLButtonElement>('send').disabled = false;
  } catch (e) {
    notice(`Reloading failed: ${e instanceof Error ? e.message : String(e)}`, true, false, true);
  } finally {
    $<HTMLButtonElement>('recover').disabled = false;
  }
}

/** Settings fields kept in localStorage between visits. */
const SETTINGS = ['context', 'memory-limit', 'fallback-url', 'fallback-model', 'fallback-key'] as const;
for (const id of SETTINGS) {
  const el = $<HTMLInputElement>(id);
  const saved = localStorage.getItem(`gptoss.${id}`);
  if (saved !== null) el.value = saved;
  el.addEventListener('change', () => localStorage.setItem(`gptoss.${id}`, el.value));
}

function fallbackEndpoint(): FallbackEndpoint | undefined {
  const baseURL = $<HTMLInputElement>('fallback-url').value.trim();
  if (!baseURL) return undefined;
  const apiKey = $<HTMLInputElement>('fallback-key').value.trim();
  return { baseURL, model: $<HTMLInputElement>('fallback-model').value.trim() || 'gpt-oss-20b', ...(apiKey ? { apiKey } : {}) };
}

/** The load options from the settings; throws with a message naming the field. */
function loadOptions(): LoadOptions {
  const context = Number($<HTMLInputElement>('context').value);
  if (!Number.isInteger(context) || context < 16) throw new Error(`Context length must be a whole number of tokens, got ${JSON.stringify($<HTMLInputElement>('context').value)}`);
  const mem = $<HTMLInputElement>('memory-limit').value.trim();
  let memoryLimit: number | undefined;
  if (mem) {
    try {
      memoryLimit = parseBytes(mem, 'memory-limit');
    } catch {
      throw new Error(`GPU memory limit must be a size such as 16 GB or 8GiB, got ${JSON.stringify(mem)}`);
    }
  }
  return { contextLimit: context, memoryLimit, fallback: fallbackEndpoint() };
}

async function refreshCache(): Promise<void> {
  $('cache-size').textContent = fmtBytes(typeof caches === 'undefined' ? 0 : await cacheSize());
  // The models in the download cache (the page and the worker share it), each with a delete button.
  const list = $('cache-list');
  list.replaceChildren(...(typeof caches === 'undefined' ? [] : await listCachedModels()).map((m) => {
    const li = document.createElement('li');
    li.dataset.url = m.url;
    const del = document.createElement('button');
    del.textContent = 'Delete';
    del.onclick = async () => {
      await deleteModelFromCache(m.url);
      await refreshCache();
    };
    li.append(`${m.model}: ${fmtBytes(m.bytes)}, ${m.complete ? 'complete' : 'partial'}, ${m.verified ? 'verified' : 'not verified'} `, del);
    return li;
  }));
}

const FALLBACK_HINT = 'You can open this page in a browser with WebGPU (recent Chrome or Edge, Safari 26, Firefox 141+ on Windows), ' +
  'or set a fallback endpoint (any OpenAI-compatible server, e.g. `gptoss serve` on another machine) under Settings and use it.';

/** What the page says about a failed load, and whether the fallback endpoint is worth offering. */
function explain(e: unknown): { text: string; offerFallback: boolean } {
  if (e instanceof GpuUnavailableError) return { text: `WebGPU is not available here: ${e.message}\n${FALLBACK_HINT}`, offerFallback: true };
  if (e instanceof ModelTooLargeError) {
    return {
      text: `This GPU does not have enough memory for the model: ${e.message}\n` +
        `Try a shorter context under Settings, a GPU with more memory, or another device.\n${FALLBACK_HINT}`,
      offerFallback: true,
    };
  }
  const msg = e instanceof Error ? e.message : String(e);
  if ((e as { code?: string }).code === 'http') {
    return { text: `The download stopped: ${msg}\nPress Load again to resume: the parts already downloaded are kept in the browser's cache.`, offerFallback: false };
  }
  return { text: `Loading failed: ${msg}`, offerFallback: false };
}

async function load(model: DemoModel, overrides: Partial<LoadOptions> = {}): Promise<void> {
  let options: LoadOptions;
  try {
    options = { ...loadOptions(), ...overrides };
  } catch (e) {
    notice((e as Error).message, true);
    return;
  }
  notice('');
  // Ask the browser not to evict the cached model under storage pressure (best effort).
  void navigator.storage?.persist?.().catch(() => false);
  $<HTMLButtonElement>('load').disabled = true;
  $<HTMLButtonElement>('send').disabled = true;
  const bar = $<HTMLProgressElement>('progress');
  bar.value = 0;
  const t0 = performance.now();
  window.__demo.loaded = undefined;
  window.__demo.loadError = undefined;
  window.__demo.deviceLost = undefined;
  window.__demo.progressEvents = 0;
  window.__demo.phases = [];
  const onProgress = (p: ProgressInfo) => {
    window.__demo.progressEvents++;
    bar.max = p.bytesTotal || 1;
    bar.value = p.bytesDone;
    if (p.phase && window.__demo.phases.at(-1) !== p.phase) window.__demo.phases.push(p.phase);
    const s = (performance.now() - t0) / 1000;
    const rate = p.bytesDone / Math.max(s, 1e-3);
    const left = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : Infinity;
    if (p.phase && p.phase !== 'weights') {
      $('progress-text').textContent = `${PHASES[p.phase]}${p.file ? ` ${p.file}` : ''}…`;
      return;
    }
    $('progress-text').textContent = `${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)} (${Math.round((100 * p.bytesDone) / (p.bytesTotal || 1))}%), ` +
      `${fmtBytes(rate)}/s, ${Number.isFinite(left) ? left.toFixed(0) : '?'} s left; downloaded ${fmtBytes(p.networkBytes ?? 0)}, from cache ${fmtBytes(p.cachedBytes ?? 0)}`;
  };
  try {
    await engine?.dispose().catch(() => {});
    engine = undefined;
    lastStats = undefined;
    engine = await createWorkerEngine(worker, { ...options, model, onProgress: onProgress as (p: LoadProgress) => void });
    engine.onDeviceLost(deviceLost);
    const info: LoadInfo = {
      modelId: engine.modelId, backend: engine.backend, adapter: engine.adapter, fallbackReason: engine.fallbackReason,
      ...(lastStats ?? { totalBytes: 0, networkBytes: 0, cachedBytes: 0 }),
    };
    window.__demo.loaded = info;
    bar.max = 1;
    bar.value = 1;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (info.backend === 'fallback') {
      $('progress-text').textContent = `Nothing downloaded: answers come from the fallback endpoint (${secs} s).`;
      notice(`Answering through the fallback endpoint ${options.fallback?.baseURL} (model ${info.modelId}), because: ${info.fallbackReason}`);
    } else {
      $('progress-text').textContent = `Loaded ${info.modelId}: ${fmtBytes(info.totalBytes)} of weights in ${secs} s ` +
        `(100%); downloaded ${fmtBytes(info.networkBytes)}, from cache ${fmtBytes(info.cachedBytes)}`;
    }
    $('adapter').textContent = describeBackend(info);
    $<HTMLButtonElement>('send').disabled = false;
  } catch (e) {
    window.__demo.loadError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const { text, offerFallback } = explain(e);
    notice(text, true, offerFallback);
  } finally {
    $<HTMLButtonElement>('load').disabled = false;
    await refreshCache().catch(() => {});
  }
}

const KEY_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'];

function describeAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unnamed adapter';
  const key = KEY_FEATURES.map((f) => `${f} ${a.features.includes(f) ? 'yes' : 'no'}`).join(', ');
  return `Adapter: ${name}${a.fallback ? ' (software fallback adapter: slow)' : ''}; ${key}; ` +
    `max buffer ${fmtBytes(a.maxBufferSize)}, max storage binding ${fmtBytes(a.maxStorageBufferBindingSize)}, ` +
    `workgroup storage ${fmtBytes(a.maxComputeWorkgroupStorageSize)}; all features: ${a.features.join(', ') || 'none'}`;
}

function describeBackend(info: LoadInfo): string {
  return info.adapter ? describeAdapter(info.adapter) : `Backend: fallback endpoint (${info.modelId})`;
}

async function send(): Promise<void> {
  const text = $<HTMLTextAreaElement>('prompt').value.trim();
  if (!text || running) return;
  $<HTMLTextAreaElement>('prompt').value = '';
  history.push({ role: 'user', content: text });
  const log = $('log');
  const u = log.appendChild(document.createElement('div'));
  u.className = 'msg user';
  u.textContent = text;
  const box = log.appendChild(document.createElement('div'));
  box.className = 'msg assistant';
  const details = box.appendChild(document.createElement('details'));
  details.appendChild(document.createElement('summary')).textContent = 'Reasoning';
  const reasoning = details.appendChild(document.createElement('div'));
  const answer = box.appendChild(document.createElement('div'));
  answer.className = 'answer';
  running = new AbortController();
  window.__demo.generating = true;
  window.__demo.lastAnswer = '';
  window.__demo.chunks = 0;
  $<HTMLButtonElement>('send').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  const t0 = performance.now();
  let first = 0;
  let tokens = 0;
  let content = '';
  try {
    const stream = await engine!.chat.completions.create(
      { model: window.__demo.loaded?.modelId, messages: history, stream: true, reasoning_effort: $<HTMLSelectElement>('effort').value as 'low' | 'medium' | 'high' },
      { signal: running.signal },
    );
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta;
      if (!d || (!d.content && !d.reasoning_content)) continue;
      tokens++;
      window.__demo.chunks++;
      if (!first) first = performance.now();
      if (d.reasoning_content) reasoning.textContent += d.reasoning_content;
      if (d.content) {
        content += d.content;
        answer.textContent = content;
        window.__demo.lastAnswer = content;
      }
      const decodeS = (performance.now() - first) / 1000;
      $('stats').textContent = `TTFT ${(first - t0).toFixed(0)} ms · ${tokens > 1 && decodeS > 0 ? ((tokens - 1) / decodeS).toFixed(1) : '–'} tokens/s`;
    }
    if (running.signal.aborted) answer.textContent = `${content} [stopped]`;
  } catch (e) {
    // Stop rejects the stream with the signal's AbortError, as the library's streams do.
    if (running.signal.aborted) answer.textContent = `${content} [stopped]`;
    else answer.textContent = `${content}\n[error: ${e instanceof Error ? e.message : String(e)}]`;
    if (e instanceof DeviceLostError) deviceLost(e);
  } finally {
    history.push({ role: 'assistant', content });
    running = undefined;
    window.__demo.generating = false;
    $<HTMLButtonElement>('send').disabled = window.__demo.deviceLost !== undefined;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

/** Paths on this site (./x, /x, x/) become absolute URLs; `owner/name` stays a Hugging Face repo id. */
function modelInput(v: string): string {
  if (/^https?:\/\//i.test(v)) return v;
  if (/^\.{0,2}\//.test(v) || v.endsWith('/')) return new URL(v, location.href).toString();
  return v;
}

$('load').onclick = () => void load(modelInput($<HTMLInputElement>('model').value.trim()));
$('pick').onclick = async () => {
  const pick = (window as unknown as { showDirectoryPicker?: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
  // Without the File System Access API (Firefox, Safari), a folder <input> gives the files.
  if (!pick) return $<HTMLInputElement>('folder-input').click();
  let dir: FileSystemDirectoryHandle;
  try {
    dir = await pick.call(window);
  } catch {
    return; // the user closed the picker
  }
  await load(dir);
};
$<HTMLInputElement>('folder-input').onchange = () => {
  const files = [...($<HTMLInputElement>('folder-input').files ?? [])];
  if (files.length > 0) void load(files);
};
$('send').onclick = () => void send();
$('stop').onclick = () => running?.abort();
$('recover').onclick = () => void recover();
$('clear-cache').onclick = async () => {
  await clearCache();
  await refreshCache();
};
$('fallback-form').onsubmit = (e) => e.preventDefault();
$('use-fallback').onclick = () => {
  if (!fallbackEndpoint()) {
    ($('settings') as HTMLDetailsElement).open = true;
    $('fallback-url').focus();
    notice('Enter the fallback endpoint\'s base URL (and model, API key) under Settings, then press the button again.', true, true);
    return;
  }
  void load(modelInput($<HTMLInputElement>('model').value.trim()));
};
/** Says at once when this browser cannot run the model itself, before anything is downloaded. */
async function checkWebGpu(): Promise<void> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const a = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (!a) {
    const why = gpu ? 'the browser offers no WebGPU adapter (the GPU or its driver may be blocklisted, or WebGPU is switched off)' : 'this browser has no navigator.gpu';
    window.__demo.webgpu = false;
    notice(explain(new GpuUnavailableError(why)).text, true, true);
    return;
  }
  window.__demo.webgpu = true;
  // What the browser offers, before any load (the worker's device reports the same adapter).
  if (!window.__demo.loaded) {
    const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    $('adapter').textContent = describeAdapter({
      vendor: info.vendor, architecture: info.architecture, description: info.description, features: [...a.features].sort(),
      maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
      fallback: info.isFallbackAdapter === true || info.architecture === 'swiftshader',
    });
  }
}
void checkWebGpu();
const q = new URLSearchParams(location.search).get('model');
if (q) $<HTMLInputElement>('model').value = q;
void refreshCache().catch(() => {});
