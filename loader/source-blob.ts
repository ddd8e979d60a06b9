/** ModelSource over browser File/Blob objects, e.g. a folder the user picked. */
import { ModelLoadError } from './errors.ts';
import { checkLength, checkRange, type ByteSource, type ModelSource } from './source.ts';

/**
 * Files keyed by their path inside the model folder. A FileList from
 * `<input webkitdirectory>` carries `webkitRelativePath` ("folder/config.json"): the first
 * component (the picked folder) is dropped.
 */
export function blobSource(files: Iterable<File> | Map<string, Blob>, description = 'selected files'): ModelSource {
  const byPath = new Map<string, Blob>();
  if (files instanceof Map) {
    for (const [k, v] of files) byPath.set(k, v);
  } else {
    for (const f of files) {
      const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath;
      byPath.set(rel ? rel.split('/').slice(1).join('/') : f.name, f);
    }
  }
  return {
    description,
    async exists(file) {
      return byPath.has(file);
    },
    async open(file): Promise<ByteSource> {
      const blob = byPath.get(file);
      if (!blob) throw new ModelLoadError('missing-file', `no file ${file} among the ${description}`, { file });
      return {
        name: file,
        size: blob.size,
        async read(offset, length) {
          checkRange(file, blob.size, offset, length);
          let buf: ArrayBuffer;
          try {
            buf = await blob.slice(offset, offset + length).arrayBuffer();
          } catch (e) {
            throw new ModelLoadError('io', `reading bytes ${offset}..${offset + length} failed: ${(e as Error).message}`, { file, cause: e });
          }
          return checkLength(file, offset, length, new Uint8Array(buf));
        },
        async close() {},
      };
    },
  };
}
