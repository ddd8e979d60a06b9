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
