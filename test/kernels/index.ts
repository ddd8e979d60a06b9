/** The kernel case tables, by family. Shared by the Node runner and the browser runner. */
import type { CaseResult } from '../gpu/check.ts';
import { attentionCases } from './attention.cases.ts';
import { embedCases } from './embed.cases.ts';
import { flashAttentionCases, flashAttentionTiledCases } from './flash-attention.cases.ts';
import { gemmCases } from './gemm.cases.ts';
import { matmulCases } from './matmul.cases.ts';
import { moeCases } from './moe.cases.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';
import { sampleCases } from './sample.cases.ts';

export const KERNEL_FAMILIES: Record<string, (device: GPUDevice) => Promise<CaseResult[]>> = {
  rmsnorm: rmsnormCases,
  embed: embedCases,
  matmul: matmulCases,
  gemm: gemmCases,
  attention: attentionCases,
  flash_attention: flashAttentionCases,
  flash_attention_tiled: flashAttentionTiledCases,
  moe: moeCases,
  sample: sampleCases,
};
