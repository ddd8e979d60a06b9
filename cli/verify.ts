/**
 * `gptoss verify --model DIR|URL|REPO`: checks every file the loader would read against its
 * published hash (--manifest, the Hugging Face hub, or manifest.sha256 beside the files), through
 * the same streaming check as a load (loader/integrity.ts).
 */
import { parseArgs } from 'node:util';
import { INDEX_FILE, SINGLE_FILE } from '../loader/checkpoint.ts';
import { findDigests } from '../loader/digests.ts';
import { IntegrityError } from '../loader/errors.ts';
import { checkedSource } from '../loader/integrity.ts';
import { resolveModelSource } from '../loader/resolve.ts';
import { readJson, type ModelSource } from '../loader/source.ts';
import { CliError, formatBytes, requireFlag } from './args.ts';
import { MODEL_SOURCE_FLAGS, MODEL_SOURCE_USAGE } from './model-flags.ts';

const CHUNK = 8 << 20;

export const command = {
  summary: 'check a checkpoint\'s files against their published sha256 (manifest or Hugging Face hub)',
  usage: [
    'Usage: gptoss verify --model DIR|URL|REPO_ID [--manifest FILE|URL] [--revision REV]',
    '',
    'Reads every file a load would read (config, tokenizer, index, shards) and prints OK, FAILED or',
    'UNCHECKED (no hash for it) per file; exits 1 when a file fails or nothing could be checked.',
    ...MODEL_SOURCE_USAGE,
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({ args: argv, options: { model: { type: 'string' }, ...MODEL_SOURCE_FLAGS } });
    const source = await resolveModelSource(requireFlag(values.model, 'model'), {
      huggingFace: { revision: values.revision, token: process.env.HF_TOKEN || undefined },
      cache: false,
    });
    const digests = await findDigests(source, values.manifest);
    if (!digests) throw new CliError(`nothing to check ${source.description} against: pass --manifest, or write one with \`gptoss manifest DIR\``);
    console.log(`checking ${source.description} against ${digests.description}`);
    const checked = checkedSource(source, { digests, policy: 'always', onWarning: () => {} });
    let failed = 0;
    let ok = 0;
    for (const file of await modelFiles(source)) {
      const t0 = performance.now();
      const f = await checked.source.open(file);
      try {
        if (checked.report.files[file] === 'unchecked') {
          console.log(`UNCHECKED  ${file}: ${digests.description} has no hash for it`);
          continue;
        }
        for (let at = 0; at < f.size; at += CHUNK) await f.read(at, Math.min(CHUNK, f.size - at));
        if (f.size === 0) await f.read(0, 0);
        ok++;
        const s = (performance.now() - t0) / 1000;
        console.log(`OK         ${file} (${formatBytes(f.size)}, ${s.toFixed(1)} s)`);
      } catch (e) {
        if (!(e instanceof IntegrityError)) throw e;
        failed++;
        console.log(`FAILED     ${e.message}`);
      } finally {
        await f.close();
      }
    }
    if (failed > 0) throw new CliError(`${failed} file(s) do not match their published sha256`);
    if (ok === 0) throw new CliError(`no file of ${source.description} has a published hash`);
  },
};

/** The files a load reads: config, tokenizer, index and shards. */
async function modelFiles(source: ModelSource): Promise<string[]> {
  const files = ['config.json'];
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) if (await source.exists(f)) files.push(f);
  if (await source.exists(INDEX_FILE)) {
    const wm = (await readJson(source, INDEX_FILE, 'bad-index') as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    files.push(INDEX_FILE, ...[...new Set(Object.values(wm).filter((v): v is string => typeof v === 'string'))].sort());
  } else {
    files.push(SINGLE_FILE);
  }
  return files;
}
