/**
 * The kernel case tables, by family. Shared by the Node runner and the browser runner.
 * Each family: the kernels (kernels/*.ts, named by their `.key`) -> the case table here -> the
 * CPU reference it compares with (engine/reference/ops.ts unless said otherwise):
 *   rmsnorm            rmsnorm.ts RmsNormKernel               rmsNorm
 *   embed              embed.ts EmbedKernel                   a row gather of the exact bf16 values
 *   matmul             matmul-bf16.ts Bf16MatmulKernel        linear
 *   matvec             matvec.ts MatvecKernel (+ sample.ts SampleCandidatesKernel)
 *                                                            rmsNorm, linear; engine/sampling.ts sampleCpu, gumbelScore
 *   attention          rope.ts, kv-cache.ts, attention.ts     reference/rope.ts applyRope, quantizeQ8, attention
 *   attention_decode   attention-decode.ts                    applyRope, quantizeQ8, attention
 *   router_decode      router.ts RouterDecodeKernel           rmsNorm, linear, topkSoftmax
 *   moe                router.ts TopkSoftmaxKernel, moe.ts    topkSoftmax, moeGateUp, moeDownSum
 *   moe_decode         moe.ts MoeGateUpKernel with normEps    rmsNorm, moeGateUp
 *   sample             sample.ts SampleKernel                 engine/sampling.ts sampleCpu, samplingProbabilities
 *   sample_candidates  sample.ts SampleCandidatesKernel       engine/sampling.ts sampleCpu (greedy)
 */
import type { CaseResult } from '../gpu/check.ts';
import { attentionDecodeCases } from './attention-decode.cases.ts';
import { attentionCases } from './attention.cases.ts';
import { embedCases } from './embed.cases.ts';
import { matmulCases } from './matmul.cases.ts';
import { matvecCases } from './matvec.cases.ts';
import { moeCases, moeDecodeCases } from './moe.cases.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';
import { routerDecodeCases } from './router-decode.cases.ts';
import { sampleCandidateCases } from './sample-candidates.cases.ts';
import { sampleCases } from './sample.cases.ts';

export const KERNEL_FAMILIES: Record<string, (device: GPUDevice) => Promise<CaseResult[]>> = {
  rmsnorm: rmsnormCases,
  embed: embedCases,
  matmul: matmulCases,
  matvec: matvecCases,
  attention: attentionCases,
  attention_decode: attentionDecodeCases,
  router_decode: routerDecodeCases,
  moe: moeCases,
  moe_decode: moeDecodeCases,
  sample: sampleCases,
  sample_candidates: sampleCandidateCases,
};
