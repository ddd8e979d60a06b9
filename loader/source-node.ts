/** ModelSource over a local directory (Node and Deno, through node:fs). */
import { ModelLoadError } from './errors.ts';
import { describeFsError, fsErrorCode, fsErrorMessage } from './fs-errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');

export async function directorySource(dir: string): Promise<ModelSource> {
  const fs: Fs = await import('node:fs/promises');
  const path: Path = await import('node:path');
  const shown = JSON.stringify(dir);
  let st;
  try {
    st = await fs.stat(dir);
  } catch (e) {
    const msg = fsErrorCode(e) === 'ENOENT' ? `model directory ${shown} does not exist` : `model directory ${shown}: ${describeFsError(e)}`;
    throw new ModelLoadError('missing-file', msg, { file: dir, cause: e });
  }
  if (!st.isDirectory()) throw new ModelLoadError('missing-file', `model directory ${shown} is a file, not a directory`, { file: dir });
  const full = (file: string) => path.join(dir, file);
  return {
    description: dir,
    // Anything at the path counts (a directory, a symlink loop...): open() then says what is wrong with it.
    async exists(file) {
      return (await fs.lstat(full(file)).catch(() => null)) !== null;
    },
    async open(file): Promise<ByteSource> {
      const where = full(file);
      let handle;
      try {
        handle = await fs.open(where, 'r');
      } catch (e) {
        let what = describeFsError(e);
        // A link whose target is missing: say so rather than "does not exist".
        if (fsErrorCode(e) === 'ENOENT' && (await fs.lstat(where).catch(() => null))?.isSymbolicLink()) what = 'is a broken symlink';
        throw new ModelLoadError(fsErrorCode(e) === 'ENOENT' ? 'missing-file' : 'io', fsErrorMessage(where, what), { file, cause: e });
      }
      let size: number;
      try {
        const s = await handle.stat();
        // open() succeeds on a directory on Linux; only the first read would fail (EISDIR).
        if (!s.isFile()) throw new ModelLoadError('io', `${where}: ${s.isDirectory() ? 'is a directory' : 'is not a regular file'}`, { file });
        size = s.size;
      } catch (e) {
        await handle.close().catch(() => {});
        if (e instanceof ModelLoadError) throw e;
        throw new ModelLoadError('io', fsErrorMessage(where, e), { file, cause: e });
      }
      let closed = false;
      return {
        name: file,
        size,
        async read(offset, length) {
          checkRange(file, size, offset, length);
          const buf = new Uint8Array(length);
          let done = 0;
          try {
            while (done < length) {
              const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
              if (bytesRead === 0) break;
              done += bytesRead;
            }
          } catch (e) {
            throw new ModelLoadError('io', `reading ${fsErrorMessage(where, e)}`, { file, cause: e });
          }
          return checkLength(file, offset, length, buf.subarray(0, done));
        },
        async close() {
          if (closed) return;
          closed = true;
          await handle.close();
        },
      };
    },
  };
}
