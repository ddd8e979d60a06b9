/** Files the CLI reads and writes for the user, with one-line errors naming the flag and path. */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { describeFsError, fsErrorCode } from '../loader/fs-errors.ts';
import { CliError } from './args.ts';

/**
 * Fails early (before minutes of work) when `path` cannot be an output file: its directory
 * missing or not a directory, or the path itself a directory.
 */
export async function checkOutputFile(path: string, flag: string): Promise<void> {
  const dir = dirname(resolve(path));
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (e) {
    throw new CliError(`--${flag} ${path}: the directory ${dir} ${fsErrorCode(e) === 'ENOENT' ? 'does not exist' : `cannot be used (${describeFsError(e)})`}`);
  }
  if (!isDir) throw new CliError(`--${flag} ${path}: ${dir} is not a directory`);
  if ((await stat(path).catch(() => null))?.isDirectory()) throw new CliError(`--${flag} ${path}: is a directory`);
}

export async function writeOutputFile(path: string, data: Uint8Array | string, flag: string): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (e) {
    throw new CliError(`--${flag} ${path}: ${describeFsError(e)}`);
  }
}

export async function readInputFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CliError(`--${flag} ${path}: ${describeFsError(e)}`);
  }
}
