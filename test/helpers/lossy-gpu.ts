/**
 * A GPU object for device-loss tests, given to createEngine as `gpu`: the engine gets the real
 * adapters and devices (Dawn in Node, navigator.gpu in a browser), and the test can destroy the
 * newest device right after a chosen number of queue submissions (so a generation is surely
 * running) and hold adapter requests back (so 'recovering' lasts until the test has looked).
 * No Node imports: the browser test page uses it too.
 */
export class LossyGpu {
  /** Every device created through this GPU, oldest first. */
  readonly devices: GPUDevice[] = [];
  readonly gpu: GPU;
  private gate: Promise<void> = Promise.resolve();
  private readonly submits = new WeakMap<GPUDevice, () => void>();

  constructor(private readonly real: GPU) {
    this.gpu = {
      requestAdapter: (o?: GPURequestAdapterOptions) => this.requestAdapter(o),
      getPreferredCanvasFormat: () => real.getPreferredCanvasFormat(),
      wgslLanguageFeatures: real.wgslLanguageFeatures,
    } as GPU;
  }

  get device(): GPUDevice {
    const d = this.devices.at(-1);
    if (!d) throw new Error('no device has been created through the LossyGpu');
    return d;
  }

  /**
   * Destroys the newest device right after its `n`-th queue submission from now (the submission
   * itself goes through); resolves when it has.
   */
  destroyAfterSubmits(n: number): Promise<void> {
    const device = this.device;
    let left = n;
    return new Promise((resolve) => {
      this.submits.set(device, () => {
        if (--left > 0) return;
        this.submits.delete(device);
        device.destroy();
        resolve();
      });
    });
  }

  /** Adapter requests wait until the returned function is called. */
  holdAdapters(): () => void {
    let release!: () => void;
    this.gate = new Promise((r) => (release = r));
    return release;
  }

  private async requestAdapter(o?: GPURequestAdapterOptions): Promise<GPUAdapter | null> {
    await this.gate;
    const adapter = await this.real.requestAdapter(o);
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    (adapter as { requestDevice: GPUAdapter['requestDevice'] }).requestDevice = async (d?: GPUDeviceDescriptor) => {
      const device = await requestDevice(d);
      this.devices.push(device);
      const queue = device.queue;
      const submit = queue.submit.bind(queue);
      (queue as { submit: GPUQueue['submit'] }).submit = (buffers: Iterable<GPUCommandBuffer>) => {
        submit(buffers);
        this.submits.get(device)?.();
      };
      return device;
    };
    return adapter;
  }
}
