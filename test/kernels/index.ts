/** The kernel case tables, by family. Shared by the Node runner and the browser runner. */
import type { CaseResult } from '../gpu/check.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';

export const KERNEL_FAMILIES: Record<string, (device: GPUDevice) => Promise<CaseResult[]>> = {
  rmsnorm: rmsnormCases,
};
