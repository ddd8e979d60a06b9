/**
 * test/openai-types.check.ts (compiled by `npm run typecheck`) must fail when our types drift
 * from the openai package's: here it is compiled against copies of engine/api/types.ts with one
 * drift each, and tsc must report the assignment that breaks. The unchanged copy compiles.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, 'test-artifacts', 'openai-types');

/** The names declared on the check file's lines that tsc reports errors on. */
async function failingNames(errors: string[]): Promise<string[]> {
  const lines = (await readFile(join(ROOT, 'test/openai-types.check.ts'), 'utf8')).split('\n');
  return errors.map((e) => {
    const n = Number(/check\.ts\((\d+),/.exec(e)?.[1]);
    return /(?:const|function) (\w+)/.exec(lines[n - 1] ?? '')?.[1] ?? `line ${n}`;
  });
}

/** Compiles the check file against types.ts changed by `drift`; returns tsc's error lines. */
async function compileWith(name: string, drift: (types: string) => string): Promise<string[]> {
  const dir = join(DIR, name);
  await mkdir(dir, { recursive: true });
  const types = await readFile(join(ROOT, 'engine/api/types.ts'), 'utf8');
  const changed = drift(types);
  if (name !== 'unchanged') expect(changed, `the ${name} drift applies`).not.toBe(types);
  await writeFile(join(dir, 'types.ts'), changed);
  const check = (await readFile(join(ROOT, 'test/openai-types.check.ts'), 'utf8'))
    .replace("'../engine/api/types.ts'", "'./types.ts'")
    .replace("'../engine/api/engine.ts'", `'${join(ROOT, 'engine/api/engine.ts')}'`);
  await writeFile(join(dir, 'check.ts'), check);
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: ['node', '@webgpu/types'],
      typeRoots: [join(ROOT, 'node_modules/@types'), join(ROOT, 'node_modules')],
      strict: true, allowImportingTsExtensions: true, verbatimModuleSyntax: true, skipLibCheck: true, noEmit: true,
    },
    files: ['check.ts'],
  }));
  const r = await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { cwd: ROOT }).then(
    (o) => `${o.stdout}${o.stderr}`,
    (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
  );
  return r.split('\n').filter((l) => /error TS\d+/.test(l) && l.includes('check.ts'));
}

describe('the compile-time check against the openai package', () => {
  afterAll(() => rm(DIR, { recursive: true, force: true }));

  it('compiles as it is', async () => {
    expect(await compileWith('unchanged', (t) => t)).toEqual([]);
  }, 120_000);

  it('fails on a finish_reason OpenAI does not have', async () => {
    const errors = await compileWith('finish', (t) => t.replace("'tool_calls' | 'content_filter';", "'tool_calls' | 'content_filter' | 'paused';"));
    expect(await failingNames(errors)).toEqual(expect.arrayContaining(['asOpenAICompletion', 'asOpenAIChunk', 'asOpenAIFinish']));
  }, 120_000);

  it('fails on a renamed usage field', async () => {
    const errors = await compileWith('usage', (t) => t.replace('  prompt_tokens: number;', '  input_tokens: number;'));
    expect(await failingNames(errors)).toEqual(expect.arrayContaining(['asOpenAICompletion', 'asOpenAIUsage', 'fromOpenAIUsage']));
  }, 120_000);

  it('fails on a request field OpenAI types differently', async () => {
    const errors = await compileWith('request', (t) => t.replace('  seed?: number | null;', '  seed?: string | null;'));
    expect(await failingNames(errors)).toEqual(expect.arrayContaining(['asOpenAIParams', 'asOpenAIStreamParams']));
  }, 120_000);
});
