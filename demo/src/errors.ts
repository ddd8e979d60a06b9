/**
 * What the page says when a load fails: what happened (no WebGPU, too large, not found / not a
 * model, blocked by CORS, the server unreachable, offline, a download cut short) and what to do.
 * A fetch that fails tells the page nothing more than "failed" (CORS and a refused connection
 * look the same to it), so a failed request is followed by a probe: an opaque no-cors request
 * that succeeds when the server answers (the browser then blocked reading it: CORS) and fails
 * when it does not.
 */
import { GpuUnavailableError, ModelLoadError, ModelTooLargeError } from '../../index.ts';

export const FALLBACK_HINT = 'You can open this page in a browser with WebGPU (recent Chrome or Edge, Safari 26, Firefox 141+ on Windows), ' +
  'or set a fallback endpoint (any OpenAI-compatible server, such as gptoss serve on another machine) under Settings and use it.';

export interface Explained {
  text: string;
  offerFallback: boolean;
}

export interface FailedLoad {
  /** The model's URL when it is one (not a local folder). */
  url?: string;
  /** Bytes of this load that came over the network before it failed. */
  downloaded: number;
}

/** Whether the server of `url` answers at all (the browser may still refuse the page its answer). */
async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { mode: 'no-cors', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

const RESUME = 'Press Load again to resume: the parts already downloaded are kept in the browser\'s cache.';

export async function explain(e: unknown, load: FailedLoad): Promise<Explained> {
  if (e instanceof GpuUnavailableError) return { text: `WebGPU is not available here: ${e.message}\n${FALLBACK_HINT}`, offerFallback: true };
  if (e instanceof ModelTooLargeError) {
    return {
      text: `This GPU does not have enough memory for the model: ${e.message}\n` +
        `Try a shorter context under Settings, a GPU with more memory, or another device.\n${FALLBACK_HINT}`,
      offerFallback: true,
    };
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof Error && e.name === 'DownloadDeclinedError') return { text: msg, offerFallback: false };
  if (!(e instanceof ModelLoadError)) return { text: `Loading failed: ${msg}`, offerFallback: false };
  const where = load.url ?? 'the model';
  if (e.code === 'missing-file' || / 404 /.test(msg)) {
    return {
      text: `No model at ${where}: ${msg}.\nA model is a folder with config.json, the tokenizer and .safetensors files: ` +
        'check the address (a path on this site, a URL, or a Hugging Face repo id such as openai/gpt-oss-20b).',
      offerFallback: false,
    };
  }
  if (e.code !== 'http') return { text: `This is not a checkpoint the engine can load: ${msg}`, offerFallback: false };
  const failed = /^(?:request for|no answer from) (\S+)/.exec(msg)?.[1];
  if (load.downloaded > 0 || !failed) return { text: `The download stopped: ${msg}\n${RESUME}`, offerFallback: false };
  if (typeof navigator !== 'undefined' && navigator.onLine === false) {
    return { text: `This device is offline, so ${failed} could not be fetched. Connect to a network and press Load again.`, offerFallback: false };
  }
  const origin = new URL(failed).origin;
  if (!(await answers(failed))) {
    return {
      text: `Could not connect to ${origin}: the server refused the connection or did not answer, or the network is down. ` +
        'Check the address and that the server is running, then press Load again.',
      offerFallback: false,
    };
  }
  if (origin !== location.origin) {
    return {
      text: `${origin} answered, but the browser blocked this page from reading its files (CORS): the server does not allow ` +
        `${location.origin}. Serve the model with the header Access-Control-Allow-Origin (and Access-Control-Allow-Headers: Range), ` +
        'or from this page\'s own site.',
      offerFallback: false,
    };
  }
  return { text: `The download stopped: ${msg}\n${RESUME}`, offerFallback: false };
}
