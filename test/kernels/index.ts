/** The kernel case tables, by family. Shared by the Node runner and the browser runner. */
import type { CaseResult } from '../gpu/check.ts';
import { attentionCases } from './attention.cases.ts';
import { embedCases } from './embed.cases.ts';
import { matmulCases } from './matmul.cases.ts';
import { moeCases } from './moe.cases.ts';
import { moeGroupedCases } from './moe-grouped.cases.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';
import { sampleCases } from './sample.cases.ts';

export const KERNEL_FAMILIES: Record<string, (device: GPUDevice) => Promise<CaseResult[]>> = {
  rmsnorm: rmsnormCases,
  embed: embedCases,
  matmul: matmulCases,
  attention: attentionCases,
  moe: moeCases,
  moe_grouped: moeGroupedCases,
  sample: sampleCases,
};
