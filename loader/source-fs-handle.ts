/**
 * ModelSource over a File System Access API directory: the result of `showDirectoryPicker()`
 * or an Origin Private File System folder (`navigator.storage.getDirectory()`). Paths such as
 * `original/model.safetensors` are walked segment by segment; reads slice the File.
 */
import { ModelLoadError } from './errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  // NotFoundError: no such entry; TypeMismatchError: a file where a folder was expected or vice versa.
  return name === 'NotFoundError' || name === 'TypeMismatchError';
}

function segments(file: string): string[] {
  const parts = file.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.some((s) => s === '..')) {
    throw new ModelLoadError('missing-file', `bad file path ${JSON.stringify(file)}`, { file });
  }
  return parts;
}

/** True for a FileSystemDirectoryHandle (or an object that behaves like one). */
export function isDirectoryHandle(m: unknown): m is FileSystemDirectoryHandle {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'directory' &&
    typeof (m as { getFileHandle?: unknown }).getFileHandle === 'function' &&
    typeof (m as { getDirectoryHandle?: unknown }).getDirectoryHandle === 'function';
}

export function directoryHandleSource(root: FileSystemDirectoryHandle, description = `folder ${root.name || '(root)'}`): ModelSource {
  async function fileHandle(file: string): Promise<FileSystemFileHandle> {
    const parts = segments(file);
    let dir = root;
    for (const p of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(p);
    return dir.getFileHandle(parts.at(-1)!);
  }
  return {
    description,
    async exists(file) {
      try {
        await fileHandle(file);
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        throw new ModelLoadError('io', `looking up ${file} in ${description} failed: ${(e as Error).message}`, { file, cause: e });
      }
    },
    async open(file): Promise<ByteSource> {
      let blob: File;
      try {
        blob = await (await fileHandle(file)).getFile();
      } catch (e) {
        if (isNotFound(e)) throw new ModelLoadError('missing-file', `no file ${file} in ${description}`, { file, cause: e });
        throw new ModelLoadError('io', `opening ${file} in ${description} failed: ${(e as Error).message}`, { file, cause: e });
      }
      return {
        name: file,
        size: blob.size,
        async read(offset, length) {
          checkRange(file, blob.size, offset, length);
          let buf: ArrayBuffer;
          try {
            buf = await blob.slice(offset, offset + length).arrayBuffer();
          } catch (e) {
            // A File from getFile() is a snapshot: it fails to read once the file changes on disk.
            throw new ModelLoadError('io', `reading bytes ${offset}..${offset + length} failed: ${(e as Error).message}`, { file, cause: e });
          }
          return checkLength(file, offset, length, new Uint8Array(buf));
        },
        async close() {},
      };
    },
  };
}
