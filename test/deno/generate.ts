/**
 * Deno entry for the runtime test: loads a checkpoint with the same engine source as Node and
 * the browser (Deno's built-in navigator.gpu), greedy-generates, and prints one JSON line.
 * Usage: deno run -A --unstable-webgpu test/deno/generate.ts MODEL_DIR N PROMPT_IDS
 */
import { Checkpoint } from '../../loader/checkpoint.ts';
import { directorySource } from '../../loader/source-node.ts';
import { createGpuContext } from '../../engine/gpu/device.ts';
import { GpuModel } from '../../engine/gpu-model.ts';
import { GpuSession } from '../../engine/gpu-session.ts';
import { generate } from '../../engine/generate.ts';
import { GREEDY } from '../../engine/sampling.ts';

declare const Deno: { args: string[]; version: { deno: string } };

const [dir, n, prompt] = Deno.args;
const gpu = await createGpuContext();
const ck = await Checkpoint.open(await directorySource(dir!));
let progressCalls = 0;
const model = await GpuModel.load(ck, gpu, { kvFormat: 'f32', maxBatch: 4, contextLimit: 64, onProgress: () => progressCalls++ });
const session = new GpuSession(model);
const res = await generate(session, prompt!.split(',').map(Number), { maxTokens: Number(n), sampling: GREEDY });
console.log(JSON.stringify({ deno: Deno.version.deno, adapter: gpu.info, fallback: gpu.fallback, progressCalls, tokens: res.tokens }));
session.dispose();
model.dispose();
await ck.close();
gpu.destroy();
