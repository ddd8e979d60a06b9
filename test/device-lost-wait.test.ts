/**
 * gpuWait without a GPU, on a stand-in device whose `lost` promise the test resolves: a GPU
 * wait that never settles (as some implementations leave mapAsync after a loss) still ends with
 * DeviceLostError; a rejection the loss explains (Dawn and Chromium reject mapAsync with an
 * AbortError, before or after `lost` resolves) becomes DeviceLostError; other failures stay as
 * they are (after a short grace period in which a loss would explain them).
 */
import { describe, expect, it } from 'vitest';
import { DeviceLostError, deviceLost, gpuWait, LOSS_GRACE_MS, throwIfLost } from '../engine/gpu/device-lost.ts';
import { decodeSteps, generate } from '../engine/generate.ts';
import type { GpuSession } from '../engine/gpu-session.ts';

function fakeDevice(): { device: GPUDevice; lose(reason?: string, message?: string): void } {
  let resolve!: (info: GPUDeviceLostInfo) => void;
  const lost = new Promise<GPUDeviceLostInfo>((r) => (resolve = r));
  return {
    device: { lost } as unknown as GPUDevice,
    lose: (reason = 'unknown', message = 'the driver was reset') => resolve({ reason, message } as GPUDeviceLostInfo),
  };
}

const never = new Promise<never>(() => {});
const abortError = () => new DOMException('mapAsync aborted', 'AbortError');

describe('gpuWait', () => {
  it('a wait that never settles rejects with DeviceLostError once the device is lost', async () => {
    const f = fakeDevice();
    const wait = gpuWait(f.device, never);
    f.lose('unknown', 'the driver was reset');
    const e = await wait.then(() => undefined, (err: unknown) => err);
    expect(e, `got ${String(e)}`).toBeInstanceOf(DeviceLostError);
    expect((e as DeviceLostError).reason).toBe('unknown');
    expect((e as DeviceLostError).deviceMessage).toBe('the driver was reset');
    expect((e as Error).message).toBe('the GPU device was lost (reason "unknown": the driver was reset)');
    expect(deviceLost(f.device), 'the loss is known synchronously afterwards').toBeInstanceOf(DeviceLostError);
    expect(() => throwIfLost(f.device, 'try again later'), 'throwIfLost adds the hint').toThrow(/the driver was reset\); try again later$/);
    await expect(gpuWait(f.device, Promise.resolve(1)), 'a wait after the loss fails at once').rejects.toBeInstanceOf(DeviceLostError);
  });

  it('a rejection that comes before the loss is reported becomes DeviceLostError', async () => {
    const f = fakeDevice();
    const wait = gpuWait(f.device, Promise.reject(abortError()));
    await new Promise((r) => setTimeout(r, 20));
    f.lose('destroyed', 'device was destroyed');
    const e = await wait.then(() => undefined, (err: unknown) => err);
    expect(e, `got ${String(e)}`).toBeInstanceOf(DeviceLostError);
    expect((e as DeviceLostError).reason).toBe('destroyed');
  });

  it('results and failures of a device that is not lost pass through', async () => {
    const f = fakeDevice();
    expect(await gpuWait(f.device, Promise.resolve('mapped'))).toBe('mapped');
    const t0 = performance.now();
    const e = await gpuWait(f.device, Promise.reject(abortError())).then(() => undefined, (err: unknown) => err);
    expect((e as Error).name, 'the original error, after the grace period').toBe('AbortError');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LOSS_GRACE_MS - 50);
    expect(deviceLost(f.device)).toBeUndefined();
    f.lose();
    await new Promise((r) => setTimeout(r, 0));
    expect(deviceLost(f.device)).toBeInstanceOf(DeviceLostError);
  });
});

/**
 * generate() and decodeSteps() through a loss found between two steps: the next enqueueStep
 * throws (the loss is known) while the step before it is still in flight; that step then fails
 * too, and must not surface as an unhandled rejection (Vitest fails a run that has one).
 */
describe('pipelined decode through a loss between steps', () => {
  function lossySession() {
    const lost = new DeviceLostError('destroyed', 'device was destroyed');
    let calls = 0;
    let failInFlight!: () => void;
    const session = {
      position: 3,
      contextLimit: 100,
      append: async () => {},
      sample: async () => 5,
      rewind: () => {},
      enqueueStep: (): Promise<number> => {
        calls++;
        if (calls === 1) return Promise.resolve(6);
        if (calls === 2) return new Promise<number>((_, reject) => (failInFlight = () => reject(lost.withHint())));
        failInFlight();
        throw lost.withHint();
      },
    };
    return { session: session as unknown as GpuSession, lost };
  }

  async function unhandledDuring(run: () => Promise<unknown>): Promise<unknown[]> {
    const seen: unknown[] = [];
    const onUnhandled = (reason: unknown) => seen.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await run();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    return seen;
  }

  it('generate rejects with the loss and leaves no unhandled rejection', async () => {
    const { session } = lossySession();
    const seen = await unhandledDuring(async () => {
      const e = await generate(session, [1, 2, 3], { maxTokens: 10, sampling: { temperature: 0, topK: 0, topP: 1, seed: 0 } }).then(() => undefined, (err: unknown) => err);
      expect(e, `got ${String(e)}`).toBeInstanceOf(DeviceLostError);
    });
    expect(seen.map(String), 'unhandled rejections').toEqual([]);
  });

  it('decodeSteps rejects with the loss and leaves no unhandled rejection', async () => {
    const { session } = lossySession();
    const seen = await unhandledDuring(async () => {
      const e = await decodeSteps(session, 5, { temperature: 0, topK: 0, topP: 1, seed: 0 }).then(() => undefined, (err: unknown) => err);
      expect(e, `got ${String(e)}`).toBeInstanceOf(DeviceLostError);
    });
    expect(seen.map(String), 'unhandled rejections').toEqual([]);
  });
});
