/** The chat page: plain DOM, the engine in a worker behind WorkerEngine. */
import { GpuUnavailableError, ModelTooLargeError, type ChatMessageParam } from '../../index.ts';
import type { LoadInfo, ProgressInfo } from './protocol.ts';
import { WorkerEngine } from './worker-proxy.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const engine = new WorkerEngine();
const history: ChatMessageParam[] = [];
let running: AbortController | undefined;

declare global {
  interface Window {
    /** State for tests and curious users. */
    __demo: { loaded?: LoadInfo; loadError?: string; generating: boolean; lastAnswer: string; progressEvents: number; chunks: number };
  }
}
window.__demo = { generating: false, lastAnswer: '', progressEvents: 0, chunks: 0 };

const fmtBytes = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`);

function notice(text: string, error = false): void {
  const el = $('notice');
  el.hidden = !text;
  el.textContent = text;
  el.classList.toggle('error', error);
}

async function refreshCache(): Promise<void> {
  $('cache-size').textContent = fmtBytes(await engine.cacheSize());
}

function explain(e: unknown): string {
  const fallbackHint = 'You can use another browser with WebGPU (recent Chrome or Edge, Safari 26, Firefox 141+ on Windows), ' +
    'or the fallback endpoint: createEngine({ model, fallback: { baseURL, model } }) with an OpenAI-compatible server.';
  if (e instanceof GpuUnavailableError) return `WebGPU is not available here: ${e.message}\n${fallbackHint}`;
  if (e instanceof ModelTooLargeError) return `This GPU does not have enough memory for the model: ${e.message}\n` +
    `Try a smaller context, a smaller model, or a GPU with more memory.\n${fallbackHint}`;
  return `Loading failed: ${e instanceof Error ? e.message : String(e)}`;
}

async function load(model: string | FileSystemDirectoryHandle): Promise<void> {
  notice('');
  $<HTMLButtonElement>('load').disabled = true;
  $<HTMLButtonElement>('send').disabled = true;
  const bar = $<HTMLProgressElement>('progress');
  bar.value = 0;
  const t0 = performance.now();
  window.__demo.loaded = undefined;
  window.__demo.loadError = undefined;
  window.__demo.progressEvents = 0;
  const onProgress = (p: ProgressInfo) => {
    window.__demo.progressEvents++;
    bar.max = p.bytesTotal || 1;
    bar.value = p.bytesDone;
    const s = (performance.now() - t0) / 1000;
    const rate = p.bytesDone / Math.max(s, 1e-3);
    const left = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : Infinity;
    $('progress-text').textContent = `${fmtBytes(p.bytesDone)} / ${fmtBytes(p.bytesTotal)} (${Math.round((100 * p.bytesDone) / (p.bytesTotal || 1))}%), ` +
      `${fmtBytes(rate)}/s, ${Number.isFinite(left) ? left.toFixed(0) : '?'} s left; downloaded ${fmtBytes(p.networkBytes)}, from cache ${fmtBytes(p.cachedBytes)}`;
  };
  try {
    const info = await engine.load(model, { contextLimit: 1024 }, onProgress);
    window.__demo.loaded = info;
    bar.max = 1;
    bar.value = 1;
    $('progress-text').textContent = `Loaded ${info.modelId}: ${fmtBytes(info.totalBytes)} in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
      `(100%); downloaded ${fmtBytes(info.networkBytes)}, from cache ${fmtBytes(info.cachedBytes)}`;
    if (info.quotaWarning) notice(info.quotaWarning);
    const a = info.adapter;
    $('adapter').textContent = a
      ? `Adapter: ${a.vendor} ${a.architecture} ${a.description}; features: ${a.features.join(', ') || 'none'}; ` +
        `max buffer ${fmtBytes(a.maxBufferSize)}, max storage binding ${fmtBytes(a.maxStorageBufferBindingSize)}, workgroup storage ${fmtBytes(a.maxComputeWorkgroupStorageSize)}`
      : `Backend: ${info.backend}`;
    $<HTMLButtonElement>('send').disabled = false;
  } catch (e) {
    window.__demo.loadError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    notice(explain(e), true);
  } finally {
    $<HTMLButtonElement>('load').disabled = false;
    await refreshCache().catch(() => {});
  }
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
    const stream = await engine.chat.completions.create(
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
    answer.textContent = `${content}\n[error: ${e instanceof Error ? e.message : String(e)}]`;
  } finally {
    history.push({ role: 'assistant', content });
    running = undefined;
    window.__demo.generating = false;
    $<HTMLButtonElement>('send').disabled = false;
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
  if (!pick) return notice('This browser cannot open local folders (no showDirectoryPicker); use a URL instead.');
  await load(await pick());
};
$('send').onclick = () => void send();
$('stop').onclick = () => running?.abort();
$('clear-cache').onclick = async () => {
  await engine.clearCache();
  await refreshCache();
};
if (!('gpu' in navigator)) notice(explain(new GpuUnavailableError('navigator.gpu is missing in this browser')), true);
const q = new URLSearchParams(location.search).get('model');
if (q) $<HTMLInputElement>('model').value = q;
void refreshCache().catch(() => {});
