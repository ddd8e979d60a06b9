/**
 * The chat page's interface in headless Chromium (SwiftShader), one browser and one page for
 * the whole file: before a load, the controls are labelled, an axe-core audit finds nothing
 * serious or critical, and the model picker shows sizes; a download over 1 GB is asked about
 * (declined: nothing downloaded); a 404 path, a refused connection and a CORS refusal each get
 * their own message; a scripted model's answer is rendered as sanitized Markdown (a code block,
 * a <script> and an onerror handler that must not survive) with no "Thinking" block; Enter
 * sends and Shift+Enter is a new line; the last model is remembered and `?model=` wins; a
 * reasoning-only model shows "Thinking…" live, then collapses it; a random model's output is
 * shown raw with a token count, the transcript follows it unless scrolled up, Stop replaces
 * Send, Load is disabled while it answers, and New chat empties the transcript; at 390 px
 * nothing scrolls sideways, and the dark scheme passes the audit too. The benchmark page is
 * audited before and after a run.
 * Screenshots: test-artifacts/demo-ui-{1280,390}-{light,dark}.png.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticCheckpoint } from '../loader/synth-writer-node.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { startDemoSite, type DemoSite } from './helpers/demo-site.ts';
import { startTestServer, type TestServer } from './helpers/http-server.ts';
import { realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const T = 240_000;
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const AXE = fileURLToPath(new URL('../node_modules/axe-core/axe.min.js', import.meta.url));
/** A Markdown answer with a code block and two things DOMPurify must remove (no token may have two successors). */
const MD_SCRIPT = 'assistant<|channel|>final<|message|>## Demo\n\nRun `gptoss`:\n\n```js\nlet y = 2;\n```\n\n' +
  '<script>document.title=\'pwned\'</script><img src=x onerror="window.__xss=7"><|return|>';
const THINK_SCRIPT = 'assistant<|channel|>analysis<|message|>Weighing the question.<|end|><|return|>';

let site: DemoSite | undefined;
/** The same models from another origin that sends no CORS headers. */
let other: TestServer | undefined;
let browser: TestBrowser | undefined;
let page: Page;
/** The port of a server that was closed: connections to it are refused. */
let closedPort = 0;

beforeAll(async () => {
  const tok = await realTokenizer();
  site = await startDemoSite('browser-demo-ui', ['md', 'think', 'random', 'big20b'], async (dirOf) => {
    await writeScriptedCheckpoint(dirOf('md'), [tok.encode(MD_SCRIPT)]);
    await writeScriptedCheckpoint(dirOf('think'), [tok.encode(THINK_SCRIPT)]);
    await writeSyntheticCheckpoint({ preset: 'tiny', seed: 3, outDir: dirOf('random') });
    await writeSyntheticCheckpoint({ preset: '20b', seed: 0, outDir: dirOf('big20b'), sparse: true });
  });
  other = await startTestServer(fileURLToPath(new URL('../test-artifacts/browser-demo-ui/', import.meta.url)));
  const gone = await startTestServer(ARTIFACTS);
  closedPort = Number(new URL(gone.baseUrl).port);
  await gone.close();
  browser = await launchChromium();
  page = await browser.newPage('[demo-ui]');
  await page.setViewport({ width: 1280, height: 800 });
  await mkdir(ARTIFACTS, { recursive: true });
}, T);

afterAll(async () => {
  await browser?.close();
  await other?.close();
  await site?.close();
});

const base = () => site!.server.baseUrl;
const demo = () => page.evaluate(() => window.__demo);
const noticeText = () => page.$eval('#notice', (el) => ((el as HTMLElement).hidden ? '' : document.getElementById('notice-text')!.textContent ?? ''));
const isDisabled = (sel: string) => page.$eval(sel, (el) => (el as HTMLButtonElement).disabled);
const isHidden = (sel: string) => page.$eval(sel, (el) => (el as HTMLElement).hidden || getComputedStyle(el).display === 'none');

/** Runs axe-core on the page; fails listing each serious or critical violation with its nodes. */
async function audit(what: string): Promise<void> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const r = await (window as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe.run();
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const list = bad.map((v) => `${v.id} (${v.impact}): ${v.help}; nodes: ${v.nodes.join(' | ')}`).join('\n');
  expect(bad.length, `axe on ${what}: serious or critical violations:\n${list}`).toBe(0);
}

async function startLoad(model: string): Promise<void> {
  await page.$eval('#model', (el, v) => ((el as HTMLInputElement).value = v), model);
  await page.evaluate(() => {
    window.__demo.loaded = undefined;
    window.__demo.loadError = undefined;
  });
  await page.click('#load');
}

async function waitLoad(): Promise<Window['__demo']> {
  await page.waitForFunction(() => !window.__demo.loading && (window.__demo.loaded !== undefined || window.__demo.loadError !== undefined),
    { timeout: T, polling: 100 });
  return demo();
}

async function load(model: string): Promise<Window['__demo']> {
  await startLoad(model);
  const s = await waitLoad();
  if (s.loadError) throw new Error(`loading ${model} failed: ${s.loadError}; notice: ${await noticeText()}`);
  return s;
}

async function loadFails(model: string): Promise<string> {
  await startLoad(model);
  const s = await waitLoad();
  expect(s.loaded, `a load of ${model} that must fail worked`).toBeUndefined();
  return noticeText();
}

async function askAndWait(text: string): Promise<void> {
  await page.$eval('#prompt', (el, v) => ((el as HTMLTextAreaElement).value = v), text);
  await page.click('#send');
  await page.waitForFunction(() => window.__demo.generating, { timeout: 10_000, polling: 50 });
  await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}demo-ui-${name}.png` as `${string}.png`, fullPage: false });
}

describe('chat page interface (headless Chromium)', () => {
  it('before a load: labelled controls, a clean axe audit, model sizes, Send disabled', async () => {
    await page.goto(`${base()}index.html`);
    await page.waitForFunction(() => window.__demo.webgpu !== undefined, { timeout: 30_000, polling: 100 });
    const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea, button', (els) =>
      els.filter((e) => !(e as HTMLElement).hidden && !(e as HTMLInputElement).labels?.length && !e.getAttribute('aria-label') && !(e.textContent ?? '').trim())
        .map((e) => e.id || e.outerHTML.slice(0, 60)));
    expect(unlabelled, 'controls without a label').toEqual([]);
    expect(await page.$eval('label[for=prompt]', (el) => el.textContent), 'the prompt has a real <label>').toBe('Message');
    expect(await page.$eval('label[for=effort]', (el) => el.textContent)).toBe('Reasoning effort');
    expect(await isDisabled('#send'), 'Send with no model').toBe(true);
    const options = await page.$$eval('#model-choice option', (os) => os.map((o) => o.textContent ?? ''));
    expect(options[0], 'the default model with its size').toMatch(/^gpt-oss-20b: 13\.8 GB download, about 1[34]\.\d GB of GPU memory$/);
    expect(options[1]).toMatch(/^gpt-oss-120b: 65\.\d GB download, about 6\d\.\d GB of GPU memory$/);
    expect(await page.$eval('#model', (el) => (el as HTMLInputElement).value), 'the default model').toBe('openai/gpt-oss-20b');
    expect(await page.$eval('#about-gpu', (el) => (el as HTMLDetailsElement).open), 'adapter details folded away').toBe(false);
    expect(await page.$eval('#adapter', (el) => el.textContent)).toMatch(/^Adapter: .*features/);
    await audit('the chat page before a load');
  }, T);

  it('asks before a download over 1 GB; declined, nothing is downloaded', async () => {
    const asked: string[] = [];
    const onDialog = (d: import('puppeteer-core').Dialog) => {
      asked.push(`${d.type()}: ${d.message()}`);
      void d.dismiss();
    };
    page.on('dialog', onDialog);
    const mark = site!.server.log.length;
    try {
      const said = await loadFails('models/big20b/');
      expect(asked, 'the question asked').toEqual([expect.stringMatching(/^confirm: Download 13\.8 GB for big20b\?/)]);
      expect(said).toMatch(/^Nothing was downloaded: you chose not to download 13\.8 GB of big20b/);
    } finally {
      page.off('dialog', onDialog);
    }
    const far = site!.server.log.slice(mark).filter((r) => r.path.endsWith('.safetensors') && Number(/bytes=\d+-(\d+)/.exec(r.range ?? '')?.[1] ?? 0) > 1_000_000);
    expect(far.map((r) => `${r.path} ${r.range}`), 'shard reads past the headers').toEqual([]);
  }, T);

  it('says what happened: a path with no model, a refused connection, a CORS refusal', async () => {
    const missing = await loadFails('models/missing/');
    expect(missing, '404').toMatch(/^No model at http:\/\/127\.0\.0\.1:\d+\/models\/missing\/: .*config\.json/s);
    expect(missing).not.toMatch(/download stopped|resume/i);
    const refused = await loadFails(`http://127.0.0.1:${closedPort}/models/md/`);
    expect(refused, 'refused connection').toMatch(new RegExp(`^Could not connect to http://127\\.0\\.0\\.1:${closedPort}: `));
    const cors = await loadFails(`${other!.baseUrl}models/md/`);
    expect(cors, 'CORS').toMatch(new RegExp(`^${other!.baseUrl.slice(0, -1).replaceAll('.', '\\.')} answered, but the browser blocked .*\\(CORS\\)`, 's'));
    for (const text of [missing, refused, cors]) expect(text, 'no literal backticks').not.toContain('`');
  }, T);

  it('loads a site path without a slash in phases; Send is disabled while loading', async () => {
    await startLoad('models/md');
    await page.waitForFunction(() => window.__demo.loading, { timeout: 10_000, polling: 20 });
    expect(await isDisabled('#send'), 'Send while loading').toBe(true);
    expect(await isDisabled('#load'), 'Load while loading').toBe(true);
    const s = await waitLoad();
    expect(s.loadError).toBeUndefined();
    expect(s.loaded!.modelId).toBe('md');
    expect(s.phases).toEqual(['tokenizer', 'compile', 'weights', 'verify']);
    const rows = await page.$$eval('#phases li', (lis) => lis.map((li) => `${(li as HTMLElement).dataset.phase} ${li.className}: ${li.querySelector('.phase-text')?.textContent}`));
    expect(rows, 'every phase done').toEqual([
      expect.stringMatching(/^tokenizer phase done: [\d.]+ (kB|MB) \/ [\d.]+ (kB|MB) \(100%\)/), 'compile phase done: done',
      expect.stringMatching(/^weights phase done: .*\(100%\)/), expect.stringMatching(/^verify phase done: /),
    ]);
    expect(await page.$eval('#load-status', (el) => el.textContent)).toMatch(/^Loaded md: /);
    expect(await page.evaluate(() => localStorage.getItem('gptoss.model')), 'the model remembered').toBe('models/md');
    expect(await page.$eval('#model-state', (el) => el.textContent)).toBe('md: ready');
    await audit('the chat page with a model loaded');
  }, T);

  it('renders the answer as sanitized Markdown, with no Thinking block; Enter sends, Shift+Enter is a new line', async () => {
    await page.focus('#prompt');
    await page.keyboard.type('Show me');
    await page.keyboard.down('Shift');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Shift');
    await page.keyboard.type('some code');
    expect(await page.$eval('#prompt', (el) => (el as HTMLTextAreaElement).value), 'Shift+Enter').toBe('Show me\nsome code');
    expect((await demo()).generating, 'Shift+Enter does not send').toBe(false);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => window.__demo.generating || window.__demo.lastAnswer !== '', { timeout: 10_000, polling: 20 });
    await page.waitForFunction(() => !window.__demo.generating, { timeout: T, polling: 100 });
    const msg = await page.$$eval('#log .msg', (els) => els.map((e) => ({ cls: e.className, role: e.querySelector('.role')?.textContent })));
    expect(msg).toEqual([{ cls: 'msg user', role: 'You' }, { cls: 'msg assistant', role: 'Assistant' }]);
    expect(await page.$eval('#log .user .body', (el) => el.textContent)).toBe('Show me\nsome code');
    expect(await page.$eval('#prompt', (el) => (el as HTMLTextAreaElement).value), 'the prompt is emptied').toBe('');
    const a = '#log .assistant:last-child .answer';
    expect(await page.$eval(`${a} h2`, (el) => el.textContent)).toBe('Demo');
    expect(await page.$eval(`${a} pre > code`, (el) => el.textContent), 'the code block').toBe('let y = 2;\n');
    expect(await page.$eval(`${a} p code`, (el) => el.textContent)).toBe('gptoss');
    expect(await page.$$eval(`${a} script, ${a} [onerror]`, (els) => els.map((e) => e.outerHTML)), 'script and onerror removed').toEqual([]);
    expect(await page.$eval(`${a} img`, (el) => [el.getAttribute('src'), el.getAttribute('alt')]), 'the harmless part of the <img> stays, named')
      .toEqual(['x', 'image in the answer']);
    expect(await page.evaluate(() => [(window as unknown as { __xss?: number }).__xss ?? 'unset', document.title]), 'nothing ran').toEqual(['unset', 'gpt-oss on WebGPU']);
    expect(await page.$$eval('#log .thinking', (els) => els.length), 'no Thinking block without reasoning').toBe(0);
    expect(await page.$eval('#log .assistant', (el) => el.getAttribute('aria-busy'))).toBe('false');
    expect((await demo()).raw, 'harmony output is not shown raw').toBe(false);
    await shot('1280-light');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg, 'the dark scheme\'s background').toBe('rgb(20, 21, 24)');
    await shot('1280-dark');
    await audit('the chat page with an answer, dark scheme');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  }, T);

  it('remembers the last model across a reload; ?model= wins; a reasoning model shows Thinking… live, then folds it', async () => {
    await page.reload();
    expect(await page.$eval('#model', (el) => (el as HTMLInputElement).value), 'after a reload').toBe('models/md');
    await page.goto(`${base()}index.html?model=models/think/`);
    expect(await page.$eval('#model', (el) => (el as HTMLInputElement).value), '?model=').toBe('models/think/');
    await load('models/think/');
    // Every summary text the transcript shows, as it changes.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __summaries: string[] }).__summaries = seen;
      new MutationObserver(() => {
        const t = document.querySelector('#log .thinking summary')?.textContent;
        if (t && seen.at(-1) !== t) seen.push(t);
      }).observe(document.getElementById('log')!, { subtree: true, childList: true, characterData: true });
    });
    await askAndWait('Think first');
    const seen = await page.evaluate(() => (window as unknown as { __summaries: string[] }).__summaries);
    expect(seen, 'the disclosure\'s summary').toEqual(['Thinking…', expect.stringMatching(/^Thought for \d+ s$/)]);
    expect(await page.$eval('#log .thinking .thinking-text', (el) => el.textContent)).toBe('Weighing the question.');
    expect(await page.$eval('#log .thinking', (el) => (el as HTMLDetailsElement).open), 'folded once done').toBe(false);
  }, T);

  it('a random model: raw text and a token count, following the text unless scrolled up; Stop replaces Send; New chat', async () => {
    await page.setViewport({ width: 390, height: 640 });
    await load('models/random/');
    await page.$eval('#prompt', (el) => ((el as HTMLTextAreaElement).value = 'Say anything'));
    await page.click('#send');
    await page.waitForFunction(() => window.__demo.generating, { timeout: 10_000, polling: 20 });
    expect([await isHidden('#send'), await isHidden('#stop')], 'Send hidden, Stop shown').toEqual([true, false]);
    for (const sel of ['#load', '#pick', '#model', '#model-choice', '#context', '#effort']) expect(await isDisabled(sel), `${sel} while answering`).toBe(true);
    await page.waitForFunction(() => window.__demo.raw && window.__demo.tokens >= 40, { timeout: T, polling: 100 }).catch(async () => {
      const s = await demo();
      throw new Error(`no raw text after 40 tokens: generating ${s.generating}, tokens ${s.tokens}, raw ${s.raw}, answer ${JSON.stringify(s.lastAnswer)}`);
    });
    const count = await page.$eval('#log .assistant:last-child .token-count', (el) => el.textContent ?? '');
    expect(count).toMatch(/^\d+ tokens, shown as raw text: the output is not in the harmony format$/);
    expect(Number(count.split(' ')[0]), 'the count').toBeGreaterThanOrEqual(16);
    expect((await page.$eval('#log .assistant:last-child .raw', (el) => el.textContent ?? '')).length, 'raw text shown').toBeGreaterThan(0);
    const gap = () => page.$eval('#scroller', (el) => el.scrollHeight - el.scrollTop - el.clientHeight);
    const overflow = await page.$eval('#scroller', (el) => el.scrollHeight - el.clientHeight);
    expect(overflow, 'the transcript is taller than its view').toBeGreaterThan(100);
    expect(await gap(), 'following the answer: at the bottom').toBeLessThanOrEqual(48);
    await page.$eval('#scroller', (el) => el.scrollTo({ top: 0 }));
    const tokens = (await demo()).tokens;
    await page.waitForFunction((n) => window.__demo.tokens >= n + 20, { timeout: T, polling: 100 }, tokens);
    expect(await page.$eval('#scroller', (el) => el.scrollTop), 'scrolled up: the view stays').toBe(0);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), 'no horizontal scroll at 390 px while answering').toBeLessThanOrEqual(390);
    await page.click('#stop');
    await page.waitForFunction(() => !window.__demo.generating, { timeout: 60_000, polling: 100 });
    expect(await page.$eval('#log .assistant:last-child .answer', (el) => el.textContent ?? '')).toMatch(/\[stopped\]$/);
    expect([await isHidden('#send'), await isHidden('#stop')], 'Send back, Stop hidden').toEqual([false, true]);
    expect(await isDisabled('#load'), 'Load after the answer').toBe(false);
    expect(await isDisabled('#send'), 'Send after the answer').toBe(false);
    await page.$eval('#scroller', (el) => el.scrollTo({ top: el.scrollHeight }));
    await shot('390-light');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    await shot('390-dark');
    expect(await page.evaluate(() => document.documentElement.scrollWidth), 'no horizontal scroll at 390 px, dark').toBeLessThanOrEqual(390);
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    await page.click('#new-chat');
    expect(await page.$$eval('#log .msg', (els) => els.length), 'New chat empties the transcript').toBe(0);
    expect(await isDisabled('#new-chat'), 'nothing more to clear').toBe(true);
    await page.setViewport({ width: 1280, height: 800 });
  }, T);

  it('the cache panel lists the models with sizes and deletes one after asking', async () => {
    await page.$eval('#cache-models', (el) => ((el as HTMLDetailsElement).open = true));
    const item = '#cache-list li[data-url$="/models/think/"]';
    await page.waitForSelector(item, { timeout: 30_000 });
    expect(await page.$eval(item, (el) => el.textContent)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/models\/think\/: [\d.]+ MB, complete/);
    expect(await page.$eval('#storage-estimate', (el) => el.textContent)).toMatch(/^[\d.]+ (kB|MB|GB) used of [\d.]+ (MB|GB) this site may store$/);
    await page.click(`${item} button`);
    expect(await page.$eval(item, (el) => el.textContent), 'the question').toMatch(/Delete [\d.]+ MB of http:\S+\/models\/think\/\?.*Yes, delete.*Keep/);
    await page.click(`${item} .confirm-no`);
    expect(await page.$(`${item} .confirm-yes`), 'Keep puts the button back').toBeNull();
    await page.click(`${item} button`);
    await page.click(`${item} .confirm-yes`);
    await page.waitForFunction((sel) => document.querySelector(sel) === null, { timeout: 30_000 }, item);
    const left = await page.$$eval('#cache-list li', (els) => els.map((e) => e.getAttribute('data-url') ?? ''));
    expect(left.filter((u) => u.endsWith('/models/random/')), `the other models stay: ${left.join(', ')}`).toHaveLength(1);
  }, T);

  it('the benchmark page passes the audit before and after a run', async () => {
    await page.goto(`${base()}bench.html`);
    await page.waitForFunction(() => window.__bench.adapter !== undefined || window.__bench.adapterError !== undefined, { timeout: 60_000, polling: 100 });
    await audit('the benchmark page before a run');
    await page.evaluate(() => {
      const set = (id: string, v: string) => ((document.getElementById(id) as HTMLInputElement).value = v);
      set('model', 'models/random/');
      set('prompt-len', '2');
      set('gen', '1');
      set('repeat', '1');
      set('context', '32');
    });
    await page.click('#run');
    await page.waitForFunction(() => !window.__bench.running && (window.__bench.result !== undefined || window.__bench.error !== undefined), { timeout: T, polling: 250 });
    const error = await page.evaluate(() => window.__bench.error);
    expect(error, 'the benchmark run').toBeUndefined();
    await audit('the benchmark page after a run');
  }, T);
});
