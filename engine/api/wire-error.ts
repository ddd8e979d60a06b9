/**
 * Errors across postMessage: structured cloning keeps only an Error's name and message, so a
 * worker engine's DeviceLostError would arrive as a plain Error. Here an error is sent as its
 * kind (found with instanceof, so bundlers renaming classes do not matter), message, stack and
 * own fields (status, code, reason...), and revived on the other side as an instance of the
 * same class: `e instanceof DeviceLostError` works on the page as in the worker.
 */
import { ModelLoadError } from '../../loader/errors.ts';
import { PipelineError } from '../../kernels/pipeline-cache.ts';
import { DeviceLostError } from '../gpu/device-lost.ts';
import { GpuUnavailableError } from '../gpu/device.ts';
import { ContextLimitError } from '../gpu-session.ts';
import { ModelTooLargeError } from '../memory-plan.ts';
import { ApiError } from './types.ts';

export interface WireError {
  /** A key of KINDS, 'DOMException', or 'Error' for any other error. */
  kind: string;
  name: string;
  message: string;
  stack?: string;
  /** The error's own fields that survive structured cloning. */
  fields: Record<string, unknown>;
}

// Subclasses before their base classes: the first match names the kind.
const KINDS: Record<string, abstract new (...args: never[]) => Error> = {
  ApiError, DeviceLostError, ContextLimitError, ModelTooLargeError, GpuUnavailableError, ModelLoadError, PipelineError,
  TypeError, RangeError,
};

function cloneable(v: unknown): boolean {
  if (v === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof v)) return true;
  if (Array.isArray(v)) return v.every(cloneable);
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v as object).every(cloneable);
  return false;
}

export function toWire(e: unknown): WireError {
  if (typeof DOMException !== 'undefined' && e instanceof DOMException) {
    return { kind: 'DOMException', name: e.name, message: e.message, fields: {} };
  }
  const err = e instanceof Error ? e : new Error(typeof e === 'string' ? e : JSON.stringify(e) ?? String(e));
  const kind = Object.keys(KINDS).find((k) => err instanceof KINDS[k]!) ?? 'Error';
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) if (k !== 'message' && k !== 'stack' && cloneable(v)) fields[k] = v;
  return { kind, name: err.name, message: err.message, stack: err.stack, fields };
}

export function fromWire(w: WireError): Error {
  if (w.kind === 'DOMException') return new DOMException(w.message, w.name);
  const cls = KINDS[w.kind] ?? Error;
  // Not through the constructor (each takes other arguments): the prototype, then the fields.
  const e = Object.create(cls.prototype) as Error;
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  if (w.stack !== undefined) Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  Object.assign(e, w.fields);
  if (e.name !== w.name) Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  return e;
}
