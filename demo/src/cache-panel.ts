/**
 * The cache panel: the models in the browser's download cache (shared by the page and its
 * worker) with their sizes, a delete button each that asks first, the cache's total and the
 * site's storage use against its quota (navigator.storage.estimate).
 */
import { deleteModelFromCache, listCachedModels, type CachedModel } from '../../index.ts';
import { cacheSize, clearCache } from '../../loader/source-cache.ts';
import { $, fmtBytes, h } from './dom.ts';

const hasCaches = () => typeof caches !== 'undefined';

/**
 * A button that asks before it acts: the first press shows "Yes, <verb>" and "Keep" in its
 * place (an inline question, reachable by keyboard, instead of a blocking dialog).
 */
function confirmingButton(label: string, question: string, yes: string, act: () => Promise<void>): HTMLElement {
  const wrap = h('span', 'confirming');
  const ask = h('button', '', label);
  ask.type = 'button';
  const show = (asking: boolean) => {
    yesBtn.disabled = keep.disabled = false;
    wrap.replaceChildren(...(asking ? [h('span', '', question), yesBtn, keep] : [ask]));
  };
  const yesBtn = h('button', 'danger confirm-yes', yes);
  yesBtn.type = 'button';
  const keep = h('button', 'confirm-no', 'Keep');
  keep.type = 'button';
  ask.onclick = () => {
    show(true);
    keep.focus();
  };
  keep.onclick = () => {
    show(false);
    ask.focus();
  };
  yesBtn.onclick = async () => {
    yesBtn.disabled = keep.disabled = true;
    try {
      await act();
    } finally {
      show(false);
    }
  };
  show(false);
  return wrap;
}

function row(m: CachedModel, refresh: () => Promise<void>): HTMLLIElement {
  const li = h('li', 'cached-model');
  li.dataset.url = m.url;
  const label = `${m.model}: ${fmtBytes(m.bytes)}, ${m.complete ? 'complete' : 'partial'}, ${m.verified ? 'verified' : 'not verified'} `;
  li.append(h('span', 'cached-name', label), confirmingButton('Delete', ` Delete ${fmtBytes(m.bytes)} of ${m.model}? `, 'Yes, delete', async () => {
    await deleteModelFromCache(m.url);
    await refresh();
  }));
  li.querySelector('button')!.setAttribute('aria-label', `Delete ${m.model} from the cache`);
  return li;
}

export async function refreshCache(): Promise<void> {
  const size = hasCaches() ? await cacheSize() : 0;
  $('cache-size').textContent = fmtBytes(size);
  const models = hasCaches() ? await listCachedModels() : [];
  $('cache-list').replaceChildren(...models.map((m) => row(m, refreshCache)));
  $('cache-empty').hidden = models.length > 0;
  const est = await navigator.storage?.estimate?.().catch(() => undefined);
  $('storage-estimate').textContent = est?.quota ? `${fmtBytes(est.usage ?? 0)} used of ${fmtBytes(est.quota)} this site may store` : 'storage quota unknown';
}

export function setUpCachePanel(): void {
  $('clear-cache-slot').replaceChildren(confirmingButton('Clear cache', ' Delete every cached model? ', 'Yes, clear', async () => {
    await clearCache();
    await refreshCache();
  }));
  $('clear-cache-slot').querySelector('button')!.id = 'clear-cache';
}
