export { loadReferenceModel, ReferenceModel, ReferenceSession, type ForwardHooks } from './model.ts';
export { yarnParams, yarnTables, ropeRow, applyRope, type YarnParams } from './rope.ts';
export { writeLogitsF32, readLogitsF32 } from './logits-file.ts';
