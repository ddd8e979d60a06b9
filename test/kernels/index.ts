/**
 * The kernel case tables, by family. Shared by the Node runner and the browser runner.
 * Each family: the kernels (kernels/*.ts, named by their `.key`) -> the case table here -> the
 * CPU reference it compares with (engine/reference/ops.ts unless said otherwise):
 *   rmsnorm            rmsnorm.ts RmsNormKernel               rmsNorm
 *   embed              embed.ts EmbedKernel                   a row gather of the exact bf16 values
 *   matmul             matmul-bf16.ts Bf16MatmulKernel        linear
 *   gemm               matmul-bf16.ts prefill GEMMs (n > 1),  f64 loops in the case table
 *                      bf16 and q8 weights (f32_q8w_matmul)   (q8: over the dequantised weights)
 *   matvec             matvec.ts MatvecKernel (+ sample.ts SampleCandidatesKernel)
 *                                                            rmsNorm, linear; engine/sampling.ts sampleCpu, gumbelScore
 *   attention          rope.ts, kv-cache.ts, attention.ts     reference/rope.ts applyRope, quantizeQ8, attention
 *   flash_attention    attention.ts 'simple' (+ kv-cache.ts)  reference/attention-ref.ts attentionBatch
 *   flash_attention_tiled  attention.ts 'tiled'             reference/attention-ref.ts attentionBatch
 *   attention_decode   attention-decode.ts                    applyRope, quantizeQ8, attention
 *   router_decode      router.ts RouterDecodeKernel           rmsNorm, linear, topkSoftmax
 *   moe                router.ts TopkSoftmaxKernel, moe.ts    topkSoftmax, moeGateUp, moeDownSum
 *   moe_decode         moe.ts MoeGateUpKernel with normEps,   rmsNorm, moeGateUp, moeDownSum
 *                      MoeDownKernel
 *   moe_grouped        moe-route.ts, moe-grouped.ts (prefill) reference/moe-grouped.ts, moeGateUp, topkSoftmax
 *   sample             sample.ts SampleKernel                 engine/sampling.ts sampleCpu, samplingProbabilities
 *   sample_candidates  sample.ts SampleCandidatesKernel       engine/sampling.ts sampleCpu (greedy)
 */
import type { CaseResult } from '../gpu/check.ts';
import type { CaseScope } from './scope.ts';
import { attentionDecodeCases } from './attention-decode.cases.ts';
import { attentionCases } from './attention.cases.ts';
import { embedCases } from './embed.cases.ts';
import { flashAttentionCases, flashAttentionTiledCases } from './flash-attention.cases.ts';
import { gemmCases } from './gemm.cases.ts';
import { matmulCases } from './matmul.cases.ts';
import { matvecCases } from './matvec.cases.ts';
import { moeCases, moeDecodeCases } from './moe.cases.ts';
import { moeGroupedCases } from './moe-grouped.cases.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';
import { routerDecodeCases } from './router-decode.cases.ts';
import { sampleCandidateCases } from './sample-candidates.cases.ts';
import { sampleCases } from './sample.cases.ts';

/** A family's cases on `device`: every shape (scope 'full', the Node runner) or its browser subset (scope.ts). */
export const KERNEL_FAMILIES: Record<string, (device: GPUDevice, scope: CaseScope) => Promise<CaseResult[]>> = {
  rmsnorm: rmsnormCases,
  embed: embedCases,
  matmul: matmulCases,
  gemm: gemmCases,
  matvec: matvecCases,
  attention: attentionCases,
  flash_attention: flashAttentionCases,
  flash_attention_tiled: flashAttentionTiledCases,
  attention_decode: attentionDecodeCases,
  router_decode: routerDecodeCases,
  moe: moeCases,
  moe_decode: moeDecodeCases,
  moe_grouped: moeGroupedCases,
  sample: sampleCases,
  sample_candidates: sampleCandidateCases,
};

/**
 * A kernel code path that a case table exercises and tags its results with (CaseResult.path).
 * A path that needs device features (subgroups, shader-f16, subgroup matrices...) runs only where
 * the device was granted them, and where it was not, its `fallback` path must have run instead:
 * test/kernels.browser.test.ts checks this in every browser and prints which paths ran.
 */
export interface KernelPath {
  family: string;
  path: string;
  /** Device features the path needs; [] where it runs on every device. */
  requires: GPUFeatureName[];
  /** The path of the same family that runs where `requires` is not met. */
  fallback?: string;
  /** Where the engine uses it. */
  use: string;
}

/** Every tagged path; a case table that adds a path (e.g. an f16 or subgroup matmul) adds it here. */
export const KERNEL_PATHS: KernelPath[] = [
  { family: 'matmul', path: 'tiled', requires: [], use: 'GPUs (workgroup tiles, barriers)' },
  { family: 'matmul', path: 'simple', requires: [], use: 'fallback (CPU) adapters such as SwiftShader (barrier-free)' },
  { family: 'gemm', path: 'tiled', requires: [], use: 'GPUs: prefill projections (64 x 64 workgroup tiles, 4 x 4 per thread)' },
  { family: 'gemm', path: 'simple', requires: [], use: 'fallback (CPU) adapters: prefill projections (4 rows x 4 tokens per invocation, barrier-free)' },
  { family: 'gemm', path: 'tiled-q8', requires: [], use: "GPUs with weights 'q8': prefill qkv and o projections from 8-bit weights" },
  { family: 'gemm', path: 'simple-q8', requires: [], use: "fallback (CPU) adapters with weights 'q8': prefill qkv and o projections from 8-bit weights" },
  { family: 'matvec', path: 'tiled', requires: [], use: 'GPUs: decode projections and lm_head (x staged in workgroup memory, row reductions)' },
  { family: 'matvec', path: 'simple', requires: [], use: 'fallback (CPU) adapters: 4 rows per invocation (x read once for them), one candidate per row' },
  { family: 'matvec', path: 'tiled-subgroup', requires: ['subgroups'], fallback: 'tiled', use: 'GPUs with subgroups: decode projections and lm_head, row sums and the norm by subgroup reductions' },
  { family: 'moe_decode', path: 'staged-norm', requires: [], use: 'GPUs: the decode gate_up normalises x once per workgroup' },
  { family: 'moe_decode', path: 'staged-norm-subgroup', requires: ['subgroups'], fallback: 'staged-norm', use: 'GPUs with subgroups: the decode gate_up, norm and row sums by subgroup reductions' },
  { family: 'moe_decode', path: 'down', requires: [], use: 'GPUs without subgroups: the decode down projection + weighted sum (row sums through workgroup memory)' },
  { family: 'moe_decode', path: 'down-subgroup', requires: ['subgroups'], fallback: 'down', use: 'GPUs with subgroups: the decode down projection, row sums by subgroup reductions' },
  { family: 'router_decode', path: 'workgroup', requires: [], use: 'GPUs without subgroups: the decode router (norm and row sums through workgroup memory)' },
  { family: 'router_decode', path: 'simple', requires: [], use: 'fallback (CPU) adapters: the decode router in one invocation (barrier-free)' },
  { family: 'router_decode', path: 'subgroup', requires: ['subgroups'], fallback: 'workgroup', use: 'GPUs with subgroups: the decode router, norm and row sums by subgroup reductions' },
  { family: 'moe_grouped', path: 'tiled', requires: [], use: 'GPUs: prefill MoE over tiles of slots (MXFP4 blocks staged in workgroup memory)' },
  { family: 'moe_grouped', path: 'simple', requires: [], use: 'fallback (CPU) adapters: prefill MoE, barrier-free' },
  { family: 'moe_decode', path: 'per-invocation-norm', requires: [], use: 'fallback (CPU) adapters: the decode gate_up, one invocation per unit (gate and linear rows) computing the norm itself (barrier-free)' },
  { family: 'moe_decode', path: 'down-simple', requires: [], use: 'fallback (CPU) adapters: the decode down projection + weighted sum, one invocation per output row (barrier-free)' },
  { family: 'attention_decode', path: 'workgroup', requires: [], use: 'GPUs: decode attention, a workgroup per (kv head, key slice) sharing each key row across the GQA group' },
  { family: 'attention_decode', path: 'simple', requires: [], use: 'fallback (CPU) adapters: decode attention, one invocation per (kv head, key slice) (barrier-free)' },
  { family: 'sample_candidates', path: 'workgroup', requires: [], use: 'GPUs: the decode draw over lm_head\'s candidates (a tree through workgroup memory)' },
  { family: 'sample_candidates', path: 'simple', requires: [], use: 'fallback (CPU) adapters: the decode draw over lm_head\'s candidates in one invocation (barrier-free)' },
  { family: 'rmsnorm', path: 'workgroup', requires: [], use: 'GPUs: the prefill RMSNorm, one workgroup per token (sum through workgroup memory)' },
  { family: 'rmsnorm', path: 'simple', requires: [], use: 'fallback (CPU) adapters: the prefill RMSNorm, one invocation per token (barrier-free)' },
];

export interface PathReport {
  /** One line per declared path: whether and how often it ran, or why not and what ran instead. */
  lines: string[];
  /** What contradicts the declarations; empty when all is well. */
  failures: string[];
}

/**
 * Checks the paths tagged in `results` (by family) against KERNEL_PATHS on a device with
 * `features`: a path whose features the device has must have run, one whose features it lacks
 * must not have run and its fallback must have, and no result names an undeclared path.
 */
export function checkPaths(results: Record<string, CaseResult[]>, features: Iterable<string>): PathReport {
  const have = new Set(features);
  const ran = new Map<string, number>();
  const failures: string[] = [];
  for (const [family, list] of Object.entries(results)) {
    for (const r of list) {
      if (r.path === undefined) continue;
      const id = `${family}/${r.path}`;
      ran.set(id, (ran.get(id) ?? 0) + 1);
      if (!KERNEL_PATHS.some((p) => p.family === family && p.path === r.path)) failures.push(`${id}: a case ran a path missing from KERNEL_PATHS (${r.message})`);
    }
  }
  const lines: string[] = [];
  for (const p of KERNEL_PATHS) {
    if (!(p.family in results)) {
      failures.push(`${p.family}/${p.path}: the family has no results`);
      continue;
    }
    const id = `${p.family}/${p.path}`;
    const n = ran.get(id) ?? 0;
    const missing = p.requires.filter((f) => !have.has(f));
    const needs = p.requires.length ? `needs ${p.requires.join(', ')}` : 'needs no feature';
    if (missing.length === 0) {
      lines.push(`${id} (${needs}; used on ${p.use}): ran ${n} cases`);
      if (n === 0) failures.push(`${id}: the device has what the path needs, yet no case ran it`);
    } else {
      const fb = p.fallback === undefined ? 0 : (ran.get(`${p.family}/${p.fallback}`) ?? 0);
      lines.push(`${id} (${needs}): not run, the device lacks ${missing.join(', ')}; ` +
        (p.fallback === undefined ? 'no fallback declared' : `its fallback ${p.family}/${p.fallback} ran ${fb} cases`));
      if (n > 0) failures.push(`${id}: ran ${n} cases on a device without ${missing.join(', ')}`);
      if (p.fallback === undefined) failures.push(`${id}: needs ${missing.join(', ')} but declares no fallback`);
      else if (fb === 0) failures.push(`${id}: the device lacks ${missing.join(', ')} and the fallback ${p.family}/${p.fallback} did not run either`);
    }
  }
  return { lines, failures };
}
