/** ModelSource over a local directory (Node and Deno, through node:fs). */
import { ModelLoadError } from './errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');

export async function directorySource(dir: string): Promise<ModelSource> {
  const fs: Fs = await import('node:fs/promises');
  const path: Path = await import('node:path');
  const st = await fs.stat(dir).catch(() => null);
  if (!st || !st.isDirectory()) throw new ModelLoadError('missing-file', `model directory ${dir} does not exist`, { file: dir });
  const full = (file: string) => path.join(dir, file);
  return {
    description: dir,
    async exists(file) {
      const s = await fs.stat(full(file)).catch(() => null);
      return s !== null && s.isFile();
    },
    async open(file): Promise<ByteSource> {
      let handle;
      try {
        handle = await fs.open(full(file), 'r');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new ModelLoadError(code === 'ENOENT' ? 'missing-file' : 'io', `cannot open: ${(e as Error).message}`, { file, cause: e });
      }
      const size = (await handle.stat()).size;
      return {
        name: file,
        size,
        async read(offset, length) {
          checkRange(file, size, offset, length);
          const buf = new Uint8Array(length);
          let done = 0;
          while (done < length) {
            const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
            if (bytesRead === 0) break;
            done += bytesRead;
          }
          return checkLength(file, offset, length, buf.subarray(0, done));
        },
        async close() {
          await handle.close();
        },
      };
    },
  };
}
