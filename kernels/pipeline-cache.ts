/**
 * Compute pipelines built once and cached under a readable key, which is also the GPU label
 * (e.g. `f32_bf16w_matmul_k2880_n4096_bias`): the same name is the WGSL entry point family,
 * the wrapper, the test case and the benchmark row.
 */
/** A kernel whose WGSL or pipeline the device refused: names the kernel and the first error line. */
export class PipelineError extends Error {
  override name = 'PipelineError';
  constructor(readonly key: string, readonly gpuMessage: string) {
    super(`the GPU refused kernel ${key}: ${firstErrorLine(gpuMessage)}`);
  }
}

/** Dawn's messages run over many lines (source excerpt, call chain): the line with the error. */
function firstErrorLine(msg: string): string {
  const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => /error/i.test(l)) ?? lines[0] ?? 'unknown error').replace(/^Error while parsing WGSL:\s*/, '');
}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Error-scope results of pipelines created since the last verify(). */
  private pending: Promise<PipelineError | null>[] = [];
  /** Each pipeline's error-scope result, for ready(). */
  private readonly checks = new Map<string, Promise<PipelineError | null>>();
  private static readonly perDevice = new WeakMap<GPUDevice, PipelineCache>();

  constructor(readonly device: GPUDevice) {}

  /** The cache shared by everything on `device` (models of the same shape compile once). */
  static for(device: GPUDevice): PipelineCache {
    let c = PipelineCache.perDevice.get(device);
    if (!c) PipelineCache.perDevice.set(device, (c = new PipelineCache(device)));
    return c;
  }

  /**
   * The pipeline for `key`, compiling `source()` (entry point `main`) on first use. Creation
   * errors are caught in error scopes (not printed by the runtime): verify() reports them.
   */
  get(key: string, source: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const d = this.device;
      d.pushErrorScope('internal');
      d.pushErrorScope('validation');
      const module = d.createShaderModule({ label: key, code: source() });
      p = d.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
      const validation = d.popErrorScope();
      const internal = d.popErrorScope();
      this.pipelines.set(key, p);
      const check = Promise.all([validation, internal]).then(([v, i]) => {
        const err = v ?? i;
        if (!err) return null;
        this.pipelines.delete(key);
        return new PipelineError(key, err.message);
      }, (e: unknown) => new PipelineError(key, e instanceof Error ? e.message : String(e)));
      this.checks.set(key, check);
      this.pending.push(check);
    }
    return p;
  }

  /** Resolves once every pipeline made so far is valid; else rejects with the first PipelineError. */
  async verify(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    const failed = (await Promise.all(pending)).find((e) => e !== null);
    if (failed) throw failed;
  }

  /**
   * Resolves once the pipelines of `keys` (made by get()) are valid; else rejects with the first
   * one's PipelineError. For kernels compiled on first use, after the load's verify().
   */
  async ready(keys: Iterable<string>): Promise<void> {
    for (const key of keys) {
      const err = await this.checks.get(key);
      if (err) throw err;
    }
  }

  /** A pipeline for `key` has been made (and not refused). */
  has(key: string): boolean {
    return this.pipelines.has(key);
  }

  get size(): number {
    return this.pipelines.size;
  }
}

/**
 * The pipeline-cache key (and GPU label) of a kernel: its family name, then every parameter its
 * WGSL source reads, so two kernels that differ in any of them never share a pipeline.
 * `true` flags appear by name, false/undefined ones not at all; numbers as written by String().
 */
export function kernelKey(family: string, params: Record<string, string | number | boolean | undefined>): string {
  const parts = [family];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === false) continue;
    parts.push(v === true ? k : `${k}${v}`);
  }
  return parts.join('_');
}

/** A bind group over buffers given in binding order (binding i = buffers[i]). */
export function bindBuffers(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  buffers: (GPUBuffer | GPUBufferBinding)[],
  label?: string,
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((b, i) => ({ binding: i, resource: 'buffer' in b ? b : { buffer: b } })),
  });
}

/** One recorded dispatch: everything needed to replay it into a compute pass. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number?, number?];
}

export function encodeDispatches(pass: GPUComputePassEncoder, list: Iterable<Dispatch>): void {
  for (const d of list) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
  }
}

/** Splits a workgroup count that may exceed the per-dimension limit into (x, y). */
export function grid2d(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}

/** Formats a number as a WGSL f32 literal that round-trips exactly. */
export function f32Literal(x: number): string {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) throw new Error(`cannot write ${x} as a WGSL f32 literal`);
  const s = v.toPrecision(9);
  return /[.e]/.test(s) ? `${s}f` : `${s}.0f`;
}
