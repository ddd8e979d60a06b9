/**
 * The worker engine in the browser: createWorkerEngine with a real Web Worker (which runs
 * serveEngineInWorker), on the scripted checkpoint at ?model=URL. It streams an answer, aborts a
 * stream, provokes typed errors and records the load's progress; the findings go to
 * window.__workerResult (a WorkerEngineResult, or an error string) for the test in Node.
 */
import { ApiError, ContextLimitError, ModelLoadError, createWorkerEngine, type LoadProgress } from '../../index.ts';

export interface WorkerEngineResult {
  backend: string;
  progress: { calls: number; done: number; total: number };
  streamed: { text: string; chunks: number; finish: (string | null)[] };
  plain: string | null;
  aborted: { name: string; partial: string; pendingAfter: number; answerAfter: string | null };
  errors: { name: string; instance: boolean; status?: number; code?: string | null; message: string }[];
  /** Longest gap between the page's own timer beats while the worker loaded and answered (ms). */
  longestBeatGapMs: number;
}

declare global {
  interface Window {
    __workerResult?: WorkerEngineResult | string;
  }
}

const ASK = [{ role: 'user' as const, content: 'Say hello.' }];

async function main(): Promise<WorkerEngineResult> {
  const model = new URL(new URLSearchParams(location.search).get('model')!, location.href).href;
  let last = performance.now();
  let longest = 0;
  const beat = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 20);
  const progress = { calls: 0, done: 0, total: 0 };
  const onProgress = (p: LoadProgress) => {
    progress.calls++;
    progress.done = p.bytesDone;
    progress.total = p.bytesTotal;
  };
  const worker = new Worker(new URL('./worker-engine-worker.ts', import.meta.url), { type: 'module' });
  const engine = await createWorkerEngine(worker, { model, contextLimit: 256, modelId: 'scripted', onProgress });

  const streamed = { text: '', chunks: 0, finish: [] as (string | null)[] };
  for await (const c of await engine.chat.completions.create({ messages: ASK, stream: true })) {
    streamed.chunks++;
    streamed.text += c.choices[0]?.delta.content ?? '';
    if (c.choices[0]?.finish_reason) streamed.finish.push(c.choices[0].finish_reason);
  }
  const plain = (await engine.chat.completions.create({ messages: ASK })).choices[0]!.message.content;

  const ac = new AbortController();
  let partial = '';
  let abortName = 'none';
  try {
    for await (const c of await engine.chat.completions.create({ messages: ASK, stream: true }, { signal: ac.signal })) {
      partial += c.choices[0]?.delta.content ?? '';
      if (partial.length > 0) ac.abort();
    }
  } catch (e) {
    abortName = (e as Error).name;
  }
  const pendingAfter = engine.pending;
  const answerAfter = (await engine.chat.completions.create({ messages: ASK })).choices[0]!.message.content;

  const errors: WorkerEngineResult['errors'] = [];
  const record = (e: unknown, cls: abstract new (...a: never[]) => Error) => {
    const err = e as Error & { status?: number; code?: string | null };
    errors.push({ name: err.name, instance: e instanceof cls, status: err.status, code: err.code, message: err.message });
  };
  await engine.chat.completions.create({ messages: ASK, model: 'gpt-4' }).catch((e: unknown) => record(e, ApiError));
  await engine.createSession().append(new Array(300).fill(1)).catch((e: unknown) => record(e, ContextLimitError));
  const other = new Worker(new URL('./worker-engine-worker.ts', import.meta.url), { type: 'module' });
  await createWorkerEngine(other, { model: new URL('missing/', model).href }).catch((e: unknown) => record(e, ModelLoadError));
  other.terminate();

  await engine.dispose();
  worker.terminate();
  clearInterval(beat);
  return { backend: engine.backend, progress, streamed, plain, aborted: { name: abortName, partial, pendingAfter, answerAfter }, errors, longestBeatGapMs: longest };
}

main().then(
  (r) => {
    window.__workerResult = r;
    document.getElementById('log')!.textContent = JSON.stringify(r, null, 2);
  },
  (e: unknown) => {
    window.__workerResult = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e);
  },
);
