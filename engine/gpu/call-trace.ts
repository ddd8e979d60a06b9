/**
 * A record of the WebGPU calls a program makes, for checking the shape of a decode step from
 * the outside: submits, dispatches, objects created, bytes written and read back per token, and
 * whether token N+1 was already submitted when token N's id came back.
 *
 * It wraps the methods on the prototypes of the device's objects (so it sees every call, in
 * Node/Dawn, Deno and browsers alike, without proxies that native code would reject) until
 * `stop()`. Debugging and measuring only: never installed on the hot path by default.
 */

export type CallKind =
  | 'create' | 'encoder' | 'pass' | 'dispatch' | 'submit' | 'writeBuffer' | 'mapAsync' | 'mapResolved';

export interface CallEvent {
  kind: CallKind;
  /** For 'create': the method (createBuffer, createBindGroup, ...). */
  method?: string;
  /** Encoder label (encoder, submit: the labels of the submitted command buffers' encoders). */
  label?: string;
  /** writeBuffer / mapAsync: bytes. */
  bytes?: number;
  /** mapAsync / mapResolved: which call (the n-th mapAsync). */
  map?: number;
}

const CREATE_METHODS = [
  'createBuffer', 'createBindGroup', 'createBindGroupLayout', 'createPipelineLayout', 'createComputePipeline',
  'createComputePipelineAsync', 'createShaderModule', 'createQuerySet', 'createTexture', 'createSampler', 'createRenderPipeline',
];

type AnyFn = (...args: unknown[]) => unknown;

export class GpuCallTrace {
  readonly events: CallEvent[] = [];
  private readonly restore: (() => void)[] = [];
  private readonly encoderLabels = new WeakMap<object, string>();
  private maps = 0;

  constructor(device: GPUDevice) {
    // Sample objects give the prototypes; they are made before the patches, so they are not recorded.
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.end();
    enc.finish();
    const buf = device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const devProto = Object.getPrototypeOf(device) as Record<string, AnyFn>;
    const self = this;
    for (const m of CREATE_METHODS) {
      if (typeof devProto[m] === 'function') this.wrap(devProto, m, () => ({ kind: 'create', method: m }));
    }
    this.wrap(devProto, 'createCommandEncoder', (args) => ({ kind: 'encoder', label: (args[0] as GPUCommandEncoderDescriptor | undefined)?.label ?? '' }), (result, args) => {
      self.encoderLabels.set(result as object, (args[0] as GPUCommandEncoderDescriptor | undefined)?.label ?? '');
    });
    const encProto = Object.getPrototypeOf(enc) as Record<string, AnyFn>;
    this.wrap(encProto, 'beginComputePass', () => ({ kind: 'pass' }));
    this.wrap(encProto, 'finish', null, (result, _args, target) => {
      self.encoderLabels.set(result as object, self.encoderLabels.get(target as object) ?? '');
    });
    const passProto = Object.getPrototypeOf(pass) as Record<string, AnyFn>;
    this.wrap(passProto, 'dispatchWorkgroups', () => ({ kind: 'dispatch' }));
    this.wrap(passProto, 'dispatchWorkgroupsIndirect', () => ({ kind: 'dispatch' }));
    const queueProto = Object.getPrototypeOf(device.queue) as Record<string, AnyFn>;
    this.wrap(queueProto, 'submit', (args) => ({
      kind: 'submit', label: [...(args[0] as Iterable<object>)].map((cb) => self.encoderLabels.get(cb) ?? '').join(','),
    }));
    this.wrap(queueProto, 'writeBuffer', (args) => {
      const data = args[2] as ArrayBufferView | ArrayBuffer;
      const size = (args[4] as number | undefined) ?? data.byteLength - ((args[3] as number | undefined) ?? 0);
      return { kind: 'writeBuffer', bytes: size };
    });
    const bufProto = Object.getPrototypeOf(buf) as Record<string, AnyFn>;
    const origMap = bufProto.mapAsync!;
    bufProto.mapAsync = function (this: GPUBuffer, ...args: unknown[]) {
      const n = self.maps++;
      const size = (args[2] as number | undefined) ?? this.size - ((args[1] as number | undefined) ?? 0);
      self.events.push({ kind: 'mapAsync', bytes: size, map: n });
      return (origMap.apply(this, args) as Promise<void>).then(() => {
        self.events.push({ kind: 'mapResolved', map: n });
      });
    };
    this.restore.push(() => {
      bufProto.mapAsync = origMap;
    });
    buf.destroy();
  }

  /** Removes the wrappers; the events stay. */
  stop(): void {
    while (this.restore.length) this.restore.pop()!();
  }

  private wrap(
    proto: Record<string, AnyFn>,
    name: string,
    record: ((args: unknown[]) => CallEvent) | null,
    after?: (result: unknown, args: unknown[], target: unknown) => void,
  ): void {
    const orig = proto[name];
    if (typeof orig !== 'function') return;
    const events = this.events;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      if (record) events.push(record(args));
      const result = orig.apply(this, args);
      after?.(result, args, this);
      return result;
    };
    this.restore.push(() => {
      proto[name] = orig;
    });
  }
}

/** What one decode step (one submitted 'decode' command buffer) did, and the worst over all steps. */
export interface DecodeShape {
  steps: number;
  /** Max over steps of each figure, counted from the previous decode submit to this one. */
  submitsPerStep: number;
  dispatchesPerStep: { min: number; max: number };
  passesPerStep: number;
  encodersPerStep: number;
  /** Objects created per step other than the command encoder and its passes. */
  createdPerStep: number;
  mapsPerStep: number;
  bytesReadPerStep: number;
  bytesWrittenPerStep: number;
  /** Steps whose id came back only after the next step had been submitted (all but the last, when pipelined). */
  pipelined: number;
  /**
   * Steps whose id came back together with the previous step's, before the host could submit
   * anything in between (the GPU outran the host, so no ordering of calls can show the
   * pipelining); never the case for an engine that waits for each id before the next step.
   */
  overtaken: number;
}

/**
 * Reads the events of a generation: decode steps are the submits of encoders labelled
 * `decode ...` (engine/gpu-session.ts); each step's window runs from the previous decode submit.
 */
export function decodeShape(events: CallEvent[]): DecodeShape {
  const steps: { at: number; map?: number }[] = [];
  events.forEach((e, i) => {
    if (e.kind === 'submit' && e.label?.startsWith('decode')) steps.push({ at: i });
  });
  // The read-back of a step is the first mapAsync after its submit.
  for (const s of steps) {
    const m = events.slice(s.at).find((e) => e.kind === 'mapAsync');
    s.map = m?.map;
  }
  const shape: DecodeShape = {
    steps: steps.length, submitsPerStep: 0, dispatchesPerStep: { min: Infinity, max: 0 }, passesPerStep: 0, encodersPerStep: 0,
    createdPerStep: 0, mapsPerStep: 0, bytesReadPerStep: 0, bytesWrittenPerStep: 0, pipelined: 0, overtaken: 0,
  };
  const resolvedAt = (k: number) => events.findIndex((e) => e.kind === 'mapResolved' && e.map === steps[k]!.map);
  for (let k = 0; k < steps.length; k++) {
    const from = k === 0 ? steps[0]!.at : steps[k - 1]!.at + 1;
    // The first step's window starts at its own encoder, so the prefill before it is not counted.
    const start = k === 0 ? lastIndex(events, from, (e) => e.kind === 'encoder') : from;
    const win = events.slice(start, steps[k]!.at + 1);
    const count = (kind: CallKind) => win.filter((e) => e.kind === kind).length;
    const d = count('dispatch');
    shape.submitsPerStep = Math.max(shape.submitsPerStep, count('submit'));
    shape.dispatchesPerStep.min = Math.min(shape.dispatchesPerStep.min, d);
    shape.dispatchesPerStep.max = Math.max(shape.dispatchesPerStep.max, d);
    shape.passesPerStep = Math.max(shape.passesPerStep, count('pass'));
    shape.encodersPerStep = Math.max(shape.encodersPerStep, count('encoder'));
    shape.createdPerStep = Math.max(shape.createdPerStep, count('create'));
    const after = events.slice(steps[k]!.at, k + 1 < steps.length ? steps[k + 1]!.at : events.length);
    const maps = after.filter((e) => e.kind === 'mapAsync');
    shape.mapsPerStep = Math.max(shape.mapsPerStep, maps.length);
    shape.bytesReadPerStep = Math.max(shape.bytesReadPerStep, maps.reduce((a, e) => a + (e.bytes ?? 0), 0));
    shape.bytesWrittenPerStep = Math.max(shape.bytesWrittenPerStep, win.filter((e) => e.kind === 'writeBuffer').reduce((a, e) => a + (e.bytes ?? 0), 0));
    const resolved = resolvedAt(k);
    if (k + 1 < steps.length) {
      if (resolved > steps[k + 1]!.at) shape.pipelined++;
      else if (k > 0 && !events.slice(resolvedAt(k - 1), resolved).some((e) => e.kind === 'submit')) shape.overtaken++;
    }
  }
  if (steps.length === 0) shape.dispatchesPerStep.min = 0;
  return shape;
}

function lastIndex<T>(a: T[], before: number, pred: (x: T) => boolean): number {
  for (let i = before; i >= 0; i--) if (pred(a[i]!)) return i;
  return before;
}
