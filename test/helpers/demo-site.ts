/**
 * The built browser demo (demo/) on a local server for browser tests. Vite builds the site once
 * per test run into test-artifacts/demo-site/ (the first test file that needs it builds, under a
 * lock; the others wait and reuse it). Each site, test-artifacts/<name>/, links to the built
 * files, and checkpoints written by the test into a temporary folder appear under
 * models/<model>/ (symlinks, same origin as the page); startTestServer serves it all.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { inject } from 'vitest';
import { startTestServer, type TestServer } from './http-server.ts';

const DEMO_CONFIG = fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const BUILD_DIR = join(ARTIFACTS, 'demo-site');
const LOCK_DIR = join(ARTIFACTS, 'demo-site.lock');
/** Written last by a build: the run it was built for. */
const STAMP = '.built-for-run';
/** A lock older than this was left by a run that died while building. */
const STALE_LOCK_MS = 10 * 60_000;

export interface DemoSite {
  server: TestServer;
  /** The folder served as models/<name>/. */
  modelDir(name: string): string;
  close(): Promise<void>;
}

const stampOf = () => readFile(join(BUILD_DIR, STAMP), 'utf8').catch(() => '');

/** The demo built for this run (`inject('testRunId')`, see global-setup.ts), building it if needed. */
async function builtDemo(): Promise<string> {
  // Without the global setup (another config), every call builds.
  const runId = inject('testRunId') ?? randomUUID();
  if ((await stampOf()) === runId) return BUILD_DIR;
  await mkdir(ARTIFACTS, { recursive: true });
  const deadline = Date.now() + STALE_LOCK_MS;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - ((await stat(LOCK_DIR).catch(() => null))?.mtimeMs ?? Date.now());
      if (age > STALE_LOCK_MS) await rm(LOCK_DIR, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`waited ${STALE_LOCK_MS / 60_000} min for ${LOCK_DIR}: another test file's demo build hangs`);
      else await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if ((await stampOf()) !== runId) {
      await build({ configFile: DEMO_CONFIG, logLevel: 'warn', build: { outDir: BUILD_DIR, emptyOutDir: true } });
      await writeFile(join(BUILD_DIR, STAMP), runId);
    }
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
  return BUILD_DIR;
}

/** Serves the demo as test-artifacts/<name>/; `writeModels(dirOf)` first writes each model into `dirOf(model)`. */
export async function startDemoSite(name: string, models: string[], writeModels: (dirOf: (model: string) => string) => Promise<void>): Promise<DemoSite> {
  const built = await builtDemo();
  const out = join(ARTIFACTS, name);
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, 'models'), { recursive: true });
  for (const entry of await readdir(built)) if (entry !== STAMP) await symlink(join(built, entry), join(out, entry));
  const tmp = await mkdtemp(join(tmpdir(), `gptoss-${name}-`));
  const modelDir = (model: string) => join(tmp, model);
  try {
    await writeModels(modelDir);
    for (const m of models) await symlink(modelDir(m), join(out, 'models', m), 'dir');
    const server = await startTestServer(out);
    return {
      server,
      modelDir,
      async close() {
        await server.close();
        await rm(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
