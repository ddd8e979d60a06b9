/**
 * The model picker: the gpt-oss checkpoints with their download size and the GPU memory they
 * need (both computed from the models' shapes with the engine's own memory plan, not typed in),
 * or any other model by URL, path on this site or Hugging Face repo id. The model field is the
 * one source of truth; it starts from `?model=`, else the last model loaded (localStorage), else
 * gpt-oss-20b.
 */
import { planMemoryAuto } from '../../engine/memory-plan.ts';
import { synthConfig, synthShape, synthTensors, type SynthPreset } from '../../loader/synth.ts';
import { $, fmtBytes, h } from './dom.ts';

export const DEFAULT_MODEL = 'openai/gpt-oss-20b';
const STORE_KEY = 'gptoss.model';
/** The tokenizer's files, downloaded with every model. */
const TOKENIZER_BYTES = 27.9e6;

export interface KnownModel {
  id: string;
  name: string;
  downloadBytes: number;
  gpuBytes: number;
}

/** Download size and GPU memory (at `contextLimit` tokens, 8-bit KV cache, the engine's default) of a gpt-oss shape. */
function known(id: string, preset: SynthPreset, contextLimit: number): KnownModel {
  const config = synthConfig(synthShape(preset));
  const weights = synthTensors(config).reduce((a, t) => a + t.bytes, 0);
  // Limits of a large desktop GPU: the plan's buffers are then split as on such a GPU.
  const plan = planMemoryAuto(config, { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 - 4 }, { contextLimit, kvFormat: 'q8', allLogits: false });
  return { id, name: id.split('/')[1]!, downloadBytes: weights + TOKENIZER_BYTES, gpuBytes: plan.totalBytes };
}

export function knownModels(contextLimit: number): KnownModel[] {
  return [known('openai/gpt-oss-20b', '20b', contextLimit), known('openai/gpt-oss-120b', '120b', contextLimit)];
}

const describe = (m: KnownModel) => `${m.name}: ${fmtBytes(m.downloadBytes)} download, about ${fmtBytes(m.gpuBytes)} of GPU memory`;

/** The field's starting value. */
export function initialModel(): string {
  return new URLSearchParams(location.search).get('model') || localStorage.getItem(STORE_KEY) || DEFAULT_MODEL;
}

/** Called after a load worked: the next visit starts from this model. */
export function rememberModel(value: string): void {
  localStorage.setItem(STORE_KEY, value);
}

export function setUpModelPicker(contextLimit: () => number): void {
  const choice = $<HTMLSelectElement>('model-choice');
  const field = $<HTMLInputElement>('model');
  const info = $('model-info');
  let models: KnownModel[] = [];
  const fill = () => {
    models = knownModels(contextLimit());
    choice.replaceChildren(...models.map((m) => Object.assign(h('option', '', describe(m)), { value: m.id })),
      Object.assign(h('option', '', 'Another model: a URL, a path on this site or a Hugging Face repo id'), { value: '' }));
    sync();
  };
  const sync = () => {
    const m = models.find((k) => k.id === field.value.trim());
    choice.value = m?.id ?? '';
    info.textContent = m ? `${describe(m)} (context ${contextLimit()} tokens).` : 'Size unknown until its headers are read; a download over 1 GB is asked about first.';
  };
  choice.onchange = () => {
    if (choice.value) field.value = choice.value;
    else {
      field.value = '';
      field.focus();
    }
    sync();
  };
  field.addEventListener('input', sync);
  $('context').addEventListener('change', fill);
  field.value = initialModel();
  fill();
}

/** Paths on this site become absolute URLs; `owner/name` may be either, and is a site path when the site has its config.json. */
export async function modelLocation(v: string): Promise<string> {
  if (/^https?:\/\//i.test(v)) return v;
  if (/^\.{0,2}\//.test(v) || v.endsWith('/')) return new URL(v, location.href).toString();
  if (/^[\w.-]+\/[\w.-]+$/.test(v)) {
    const here = new URL(`${v}/`, location.href).toString();
    const r = await fetch(`${here}config.json`, { method: 'HEAD', cache: 'no-store' }).catch(() => undefined);
    if (r?.ok) return here;
  }
  return v;
}
