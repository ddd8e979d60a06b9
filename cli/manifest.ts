/** `gptoss manifest DIR`: writes DIR/manifest.sha256, the sha256 of every file of a model folder. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeFsError } from '../loader/fs-errors.ts';
import { formatManifest, MANIFEST_FILE } from '../loader/manifest.ts';
import { CliError, formatBytes, UsageError } from './args.ts';
import { checkOutputFile, writeOutputFile } from './files.ts';

export const command = {
  summary: `write ${MANIFEST_FILE} (sha256sum format) for the files of a model folder`,
  usage: [
    'Usage: gptoss manifest DIR [--out FILE]',
    '',
    `Hashes every file directly in DIR (not in subfolders; not ${MANIFEST_FILE} itself) and writes`,
    `"<sha256>  <name>" lines to DIR/${MANIFEST_FILE}, or to --out FILE. Loads of DIR (or of its URL when`,
    'served) then check every file against it; `sha256sum -c` reads it too. Keep a copy elsewhere (and pass',
    'it with --manifest) to also catch a server that changes both the files and the manifest beside them.',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' } } });
    if (positionals.length !== 1) throw new UsageError('give the model folder as one argument');
    const dir = positionals[0]!;
    const out = values.out ?? join(dir, MANIFEST_FILE);
    await checkOutputFile(out, 'out');
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new CliError(`${dir}: ${describeFsError(e)}`);
    }
    const outPath = resolve(out);
    const files = entries.filter((e) => e.isFile() && e.name !== MANIFEST_FILE && resolve(dir, e.name) !== outPath).map((e) => e.name).sort();
    if (files.length === 0) throw new CliError(`${dir} has no files to hash`);
    const hashes: [string, string][] = [];
    let bytes = 0;
    for (const name of files) {
      const h = createHash('sha256');
      try {
        for await (const chunk of createReadStream(join(dir, name), { highWaterMark: 8 << 20 })) {
          h.update(chunk as Buffer);
          bytes += (chunk as Buffer).byteLength;
        }
      } catch (e) {
        throw new CliError(`${join(dir, name)}: ${describeFsError(e)}`);
      }
      hashes.push([name, h.digest('hex')]);
      process.stderr.write(`${hashes.at(-1)![1]}  ${name}\n`);
    }
    await writeOutputFile(out, formatManifest(hashes), 'out');
    console.log(`wrote ${out}: ${files.length} files, ${formatBytes(bytes)}`);
  },
};
