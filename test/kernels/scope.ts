/**
 * Which shapes of a case table run. The Node runner (test/kernels.test.ts) runs every shape
 * ('full'): that is where the numerics of each kernel are pinned. Each browser
 * (test/kernels.browser.test.ts) runs 'browser': every kernel variant and feature path, on the
 * shapes a table marks `browser: true` (tails, the real model's dimensions), so that each WGSL
 * source is compiled and checked by Dawn in Chromium and by naga/wgpu in Firefox without
 * compiling every shape again in SwiftShader, where a pipeline takes seconds.
 */
export type CaseScope = 'full' | 'browser';

/** The entries of `table` that run in `scope`. */
export function inScope<T extends { browser?: boolean }>(table: T[], scope: CaseScope = 'full'): T[] {
  return scope === 'full' ? table : table.filter((c) => c.browser === true);
}
