/**
 * The chat page: wires the model picker, the load view, the cache panel and the transcript to an
 * engine in a worker (the library's createWorkerEngine). window.__demo is the state for tests
 * and curious users.
 */
import {
  createWorkerEngine, DeviceLostError, GpuUnavailableError, type ChatMessageParam, type Engine, type LoadProgress,
} from '../../index.ts';
import { parseBytes } from '../../cli/args.ts';
import { refreshCache, setUpCachePanel } from './cache-panel.ts';
import { ChatView, type AnswerView } from './chat-view.ts';
import { $ } from './dom.ts';
import { explain } from './errors.ts';
import { adapterSummary, describeAdapter, describeBackend } from './gpu-info.ts';
import { LoadView } from './load-view.ts';
import { modelLocation, rememberModel, setUpModelPicker } from './model-picker.ts';
import { notice, shown } from './notice.ts';
import type { DemoMessage, DemoModel, DownloadAnswer, FallbackEndpoint, LoadInfo, LoadOptions, LoadStats, ProgressInfo } from './protocol.ts';
import { fmtBytes } from './dom.ts';

declare global {
  interface Window {
    /** State for tests and curious users. */
    __demo: {
      loaded?: LoadInfo; loadError?: string; generating: boolean; loading: boolean; lastAnswer: string; progressEvents: number; chunks: number;
      /** Tokens generated for the last answer, harmony or not. */
      tokens: number;
      /** Whether the last answer is shown as raw text (its output is not harmony). */
      raw: boolean;
      /** Whether the page found a WebGPU adapter (undefined while it looks). */
      webgpu?: boolean;
      /** Every notice shown, oldest first. */
      notices: string[];
      /** The DeviceLostError's message while the GPU device is lost (until the model is reloaded). */
      deviceLost?: string;
      /** The load progress phases seen, in order. */
      phases: string[];
      /** Loads started (a declined download counts). */
      loads: number;
    };
  }
}

const loadView = new LoadView();
window.__demo = {
  generating: false, loading: false, lastAnswer: '', progressEvents: 0, chunks: 0, tokens: 0, raw: false,
  notices: shown, phases: loadView.phases, loads: 0,
};
const chat = new ChatView($('log'), $('scroller'));
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
let engine: Engine | undefined;
/** The download statistics the worker sends at the end of a load. */
let lastStats: LoadStats | undefined;
/** The answer being streamed (it takes the worker's token messages). */
let current: AnswerView | undefined;
const history: ChatMessageParam[] = [];
let running: AbortController | undefined;

worker.addEventListener('message', (ev: MessageEvent<DemoMessage>) => {
  const m = ev.data;
  if (m?.demo === 'notice') notice(m.text);
  else if (m?.demo === 'loaded') lastStats = m.stats;
  else if (m?.demo === 'token') current?.token(m.text);
  else if (m?.demo === 'ask-download') {
    const ok = confirm(`Download ${fmtBytes(m.bytes)} for ${m.model}? It is kept in this browser's storage for the next visit.`);
    worker.postMessage({ demo: 'download-answer', id: m.id, ok } satisfies DownloadAnswer);
  }
});

/** Enables each control only when it can act: nothing that loads while generating, nothing that sends while loading. */
function updateControls(): void {
  const d = window.__demo;
  const busy = d.loading || d.generating;
  for (const id of ['load', 'pick', 'model', 'model-choice', 'context', 'memory-limit', 'fallback-url', 'fallback-model', 'fallback-key', 'use-fallback']) {
    ($(id) as HTMLInputElement).disabled = busy;
  }
  const ready = !!d.loaded && !d.loading && d.deviceLost === undefined;
  const send = $<HTMLButtonElement>('send');
  send.disabled = !ready || d.generating;
  send.hidden = d.generating;
  $('stop').hidden = !d.generating;
  $<HTMLSelectElement>('effort').disabled = d.generating;
  $<HTMLButtonElement>('new-chat').disabled = chat.isEmpty && !d.generating;
  const state = d.loading ? 'loading…' : d.deviceLost !== undefined ? 'GPU device lost' : d.generating ? 'answering…' : d.loaded ? 'ready' : 'no model loaded';
  $('model-state').textContent = d.loaded && !d.loading ? `${d.loaded.modelId}: ${state}` : state;
}

/** The GPU device was lost (driver reset, the browser reclaimed it): say so and offer to reload. */
function deviceLost(e: DeviceLostError): void {
  window.__demo.deviceLost = e.message;
  updateControls();
  notice(`The GPU device was lost (${e.reason}${e.deviceMessage ? `: ${e.deviceMessage}` : ''}). ` +
    'Reload the model onto a new device to go on chatting (from the browser\'s cache when it was cached).', { error: true, offerRecover: true });
}

async function recover(): Promise<void> {
  $<HTMLButtonElement>('recover').disabled = true;
  notice('Reloading the model onto a new GPU device…', { offerRecover: true });
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
    loadView.status('Reloaded onto a new GPU device.');
    $('progress-text').textContent = 'Reloaded onto a new GPU device.';
  } catch (e) {
    notice(`Reloading failed: ${e instanceof Error ? e.message : String(e)}`, { error: true, offerRecover: true });
  } finally {
    $<HTMLButtonElement>('recover').disabled = false;
    updateControls();
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

const contextLimit = () => Number($<HTMLInputElement>('context').value);

/** The load options from the settings; throws with a message naming the field. */
function loadOptions(): LoadOptions {
  const context = contextLimit();
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

async function load(model: DemoModel, remember?: string): Promise<void> {
  if (window.__demo.loading || window.__demo.generating) return;
  let options: LoadOptions;
  try {
    options = loadOptions();
  } catch (e) {
    notice((e as Error).message, { error: true });
    return;
  }
  notice('');
  // Ask the browser not to evict the cached model under storage pressure (best effort).
  void navigator.storage?.persist?.().catch(() => false);
  const d = window.__demo;
  d.loads++;
  d.loading = true;
  d.loaded = undefined;
  d.loadError = undefined;
  d.deviceLost = undefined;
  d.progressEvents = 0;
  updateControls();
  const t0 = performance.now();
  const url = typeof model === 'string' && /^https?:/.test(model) ? model : undefined;
  let downloaded = 0;
  loadView.begin(`Opening ${typeof model === 'string' ? model : 'the local folder'}: reading its headers…`);
  const onProgress = (p: ProgressInfo) => {
    d.progressEvents++;
    downloaded = Math.max(downloaded, p.networkBytes ?? 0);
    loadView.update(p);
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
    d.loaded = info;
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (info.backend === 'fallback') {
      loadView.end(`Nothing downloaded: answers come from the fallback endpoint (${secs} s).`, true);
      notice(`Answering through the fallback endpoint ${options.fallback?.baseURL} (model ${info.modelId}), because: ${info.fallbackReason}`);
    } else {
      loadView.end(`Loaded ${info.modelId}: ${fmtBytes(info.totalBytes)} of weights in ${secs} s ` +
        `(100%); downloaded ${fmtBytes(info.networkBytes)}, from cache ${fmtBytes(info.cachedBytes)}`, true);
    }
    $('adapter').textContent = describeBackend(info);
    if (remember) rememberModel(remember);
  } catch (e) {
    d.loadError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const { text, offerFallback } = await explain(e, { url, downloaded });
    loadView.end('The load failed: see the message above.', false);
    notice(text, { error: true, offerFallback });
  } finally {
    d.loading = false;
    updateControls();
    await refreshCache().catch(() => {});
  }
}

async function send(): Promise<void> {
  const prompt = $<HTMLTextAreaElement>('prompt');
  const text = prompt.value.trim();
  if (!text || running || !engine || window.__demo.loading || window.__demo.deviceLost !== undefined) return;
  prompt.value = '';
  history.push({ role: 'user', content: text });
  chat.addUser(text);
  const view = chat.addAssistant();
  current = view;
  running = new AbortController();
  const d = window.__demo;
  d.generating = true;
  d.lastAnswer = '';
  d.chunks = 0;
  d.tokens = 0;
  d.raw = false;
  updateControls();
  $('stop').focus();
  const t0 = performance.now();
  let first = 0;
  const stats = () => {
    d.tokens = view.tokens;
    d.raw = view.raw;
    const n = Math.max(view.tokens, d.chunks);
    const decodeS = (performance.now() - first) / 1000;
    $('stats').textContent = first ? `${n} tokens · TTFT ${(first - t0).toFixed(0)} ms · ${n > 1 && decodeS > 0 ? ((n - 1) / decodeS).toFixed(1) : '–'} tokens/s` : '';
  };
  const timer = setInterval(stats, 250);
  let end: { stopped?: boolean; error?: string } = {};
  try {
    const stream = await engine.chat.completions.create(
      { model: d.loaded?.modelId, messages: history, stream: true, reasoning_effort: $<HTMLSelectElement>('effort').value as 'low' | 'medium' | 'high' },
      { signal: running.signal },
    );
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta;
      if (!delta || (!delta.content && !delta.reasoning_content)) continue;
      d.chunks++;
      first ||= performance.now();
      if (delta.reasoning_content) view.reasoning(delta.reasoning_content);
      if (delta.content) {
        view.content(delta.content);
        d.lastAnswer = view.text;
      }
    }
    if (running.signal.aborted) end = { stopped: true };
  } catch (e) {
    // Stop rejects the stream with the signal's AbortError, as the library's streams do.
    if (running.signal.aborted) end = { stopped: true };
    else end = { error: e instanceof Error ? e.message : String(e) };
    if (e instanceof DeviceLostError) deviceLost(e);
  } finally {
    clearInterval(timer);
    first ||= view.tokens ? performance.now() : 0;
    view.finish(end);
    stats();
    current = undefined;
    history.push({ role: 'assistant', content: view.text });
    running = undefined;
    d.generating = false;
    updateControls();
    prompt.focus();
  }
}

/** A new conversation: stops any answer and empties the transcript and the history. */
function newChat(): void {
  running?.abort();
  history.length = 0;
  chat.clear();
  $('stats').textContent = '';
  updateControls();
  $('prompt').focus();
}

async function loadFromField(): Promise<void> {
  const v = $<HTMLInputElement>('model').value.trim();
  if (!v) {
    notice('Choose a model or type its URL, path or Hugging Face repo id first.', { error: true });
    $('model').focus();
    return;
  }
  await load(await modelLocation(v), v);
}

$('load').onclick = () => void loadFromField();
$('model').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') void loadFromField();
});
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
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
$('prompt').addEventListener('keydown', (e) => {
  // Enter sends, Shift+Enter is a new line; an IME composing text keeps its Enter.
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
$('stop').onclick = () => running?.abort();
$('new-chat').onclick = newChat;
$('recover').onclick = () => void recover();
$('fallback-form').onsubmit = (e) => e.preventDefault();
$('use-fallback').onclick = () => {
  if (!fallbackEndpoint()) {
    ($('settings') as HTMLDetailsElement).open = true;
    $('fallback-url').focus();
    notice('Enter the fallback endpoint\'s base URL (and model, API key) under Settings, then press the button again.', { error: true, offerFallback: true });
    return;
  }
  void loadFromField();
};

/** Says at once when this browser cannot run the model itself, before anything is downloaded. */
async function checkWebGpu(): Promise<void> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const a = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  if (!a) {
    const why = gpu ? 'the browser offers no WebGPU adapter (the GPU or its driver may be blocklisted, or WebGPU is switched off)' : 'this browser has no navigator.gpu';
    window.__demo.webgpu = false;
    notice((await explain(new GpuUnavailableError(why), { downloaded: 0 })).text, { error: true, offerFallback: true });
    return;
  }
  window.__demo.webgpu = true;
  if (!window.__demo.loaded) $('adapter').textContent = describeAdapter(adapterSummary(a));
}

setUpModelPicker(contextLimit);
setUpCachePanel();
updateControls();
void checkWebGpu();
void refreshCache().catch(() => {});
