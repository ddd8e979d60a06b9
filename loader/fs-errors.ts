/**
 * Turns a Node file-system error (ENOENT, EISDIR, ELOOP...) into words about the path, for
 * one-line messages: "/models/x/model.safetensors is a directory". No node: imports: only
 * the error's `code` is read.
 */
const PROBLEMS: Record<string, string> = {
  ENOENT: 'does not exist',
  EISDIR: 'is a directory',
  ENOTDIR: 'has a path component that is not a directory',
  ELOOP: 'is a symlink loop',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'is on a read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  EEXIST: 'already exists',
  EBUSY: 'is busy',
  EIO: 'I/O error',
};

/** The errno code of a Node file-system error, if it is one. */
export function fsErrorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** "is a directory", "permission denied"...; the error's own message for unknown codes. */
export function describeFsError(e: unknown): string {
  const code = fsErrorCode(e);
  if (code && PROBLEMS[code]) return PROBLEMS[code];
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!;
}

/** `${path}: problem` for a file-system error about `path` (or a problem already in words). */
export function fsErrorMessage(path: string, e: unknown): string {
  return `${path}: ${typeof e === 'string' ? e : describeFsError(e)}`;
}
