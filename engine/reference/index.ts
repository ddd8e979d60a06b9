export { loadReferenceModel, ReferenceModel, ReferenceSession, type ForwardHooks } from './model.ts';
export { yarnParams, yarnTables, ropeRow, applyRope, type YarnParams } from './rope.ts';
export { writeLogitsF32, readLogitsF32 } from './logits-file.ts';
export {
  attention, dot, firstVisibleKey, linear, moeDownSum, moeGateUp, mxfp4RowDot, quantizeQ8, quantizeQ8Rows, rmsNorm, swiglu, topK, topkSoftmax,
  type AttentionShape, type LinearOptions,
} from './ops.ts';
