/**
 * The built browser demo (demo/) on a local server for browser tests: Vite builds the site into
 * test-artifacts/<name>/, checkpoints written by the test into a temporary folder appear under
 * models/<model>/ (symlinks, same origin as the page), and startTestServer serves it all.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { startTestServer, type TestServer } from './http-server.ts';

const DEMO_CONFIG = fileURLToPath(new URL('../../demo/vite.config.ts', import.meta.url));

export interface DemoSite {
  server: TestServer;
  /** The folder served as models/<name>/. */
  modelDir(name: string): string;
  close(): Promise<void>;
}

/** Builds the demo and serves it; `writeModels(dirOf)` first writes each model into `dirOf(model)`. */
export async function startDemoSite(name: string, models: string[], writeModels: (dirOf: (model: string) => string) => Promise<void>): Promise<DemoSite> {
  const out = fileURLToPath(new URL(`../../test-artifacts/${name}/`, import.meta.url));
  await build({ configFile: DEMO_CONFIG, logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
  const tmp = await mkdtemp(join(tmpdir(), `gptoss-${name}-`));
  const modelDir = (model: string) => join(tmp, model);
  try {
    await writeModels(modelDir);
    await mkdir(join(out, 'models'), { recursive: true });
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
