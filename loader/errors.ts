/**
 * One error type for everything that can be wrong with a checkpoint or its source.
 * `code` is stable for programs; the message names the file, tensor or config field
 * so a person can find the problem without a debugger.
 */
export type ModelLoadErrorCode =
  | 'missing-file' // a file the checkpoint needs is not there (config, shard, index)
  | 'missing-shard' // the index names a shard that does not exist
  | 'missing-tensor' // a tensor the model needs is in no shard
  | 'truncated' // the file ends before its header says it should
  | 'bad-header' // header length or JSON is malformed
  | 'bad-offsets' // data offsets out of range, overlapping, or not matching shape x dtype
  | 'unknown-dtype'
  | 'dtype-mismatch' // a known dtype, but not the one the model needs for this tensor
  | 'shape-mismatch' // shape contradicts the config
  | 'bad-index' // model.safetensors.index.json is malformed
  | 'bad-config' // config.json is malformed or a field is out of range
  | 'unsupported-config' // a valid config this engine does not implement
  | 'http' // an HTTP request failed
  | 'short-read' // a read returned fewer bytes than asked for
  | 'integrity' // a file's bytes do not match its published sha256 (IntegrityError)
  | 'bad-manifest' // a checksum manifest is malformed or cannot be read
  | 'io'; // another I/O failure

export interface ModelLoadErrorDetails {
  file?: string;
  tensor?: string;
  field?: string;
  cause?: unknown;
}

export class ModelLoadError extends Error {
  readonly code: ModelLoadErrorCode;
  readonly file?: string;
  readonly tensor?: string;
  readonly field?: string;

  constructor(code: ModelLoadErrorCode, message: string, details: ModelLoadErrorDetails = {}) {
    // Only what the message does not already name is appended, e.g. "(file model.safetensors)".
    const unnamed = (s: string | undefined) => s !== undefined && !message.includes(s);
    const where = [
      unnamed(details.file) ? `file ${details.file}` : '',
      unnamed(details.tensor) ? `tensor ${details.tensor}` : '',
      unnamed(details.field) ? `field ${details.field}` : '',
    ].filter(Boolean);
    super(where.length ? `${message} (${where.join(', ')})` : message, { cause: details.cause });
    this.name = 'ModelLoadError';
    this.code = code;
    this.file = details.file;
    this.tensor = details.tensor;
    this.field = details.field;
  }
}

/**
 * A file's bytes do not match the hash published for it (a manifest, the Hugging Face hub).
 * Thrown before the load returns; nothing of the model stays on the GPU and the file's entries
 * in the browser download cache are dropped, so the next load fetches it again.
 */
export class IntegrityError extends ModelLoadError {
  constructor(
    override readonly file: string,
    /** 'sha256', or 'git-sha1' for a Git blob id (files Hugging Face keeps outside LFS). */
    readonly algorithm: 'sha256' | 'git-sha1',
    readonly expected: string,
    readonly actual: string,
    /** Where the expected hash came from, e.g. "manifest.sha256" or "the Hugging Face hub". */
    readonly from: string,
    note = '',
  ) {
    super('integrity', `${file}: ${algorithm} is ${actual}, expected ${expected} (from ${from}): the file is corrupt or was changed${note}`, { file });
    this.name = 'IntegrityError';
  }
}
