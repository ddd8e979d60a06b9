/**
 * The prefill (n_tokens > 1) paths of f32_bf16w_matmul, as WGSL functions the shader in
 * matmul-bf16.ts calls: out[t*S + O + o] (= or +=) sum_i W[o, i] * x[t*K + i] (+ b[o]).
 * Both are register-blocked: a thread keeps a small tile of rows x tokens in registers, so each
 * weight value it decodes serves several tokens and each x value several rows.
 *
 * - `gemmTiled` (GPUs): a workgroup of 256 threads computes a GEMM_ROWS x GEMM_TOKENS
 *   (64 x 64) tile of outputs, 4 rows x 4 tokens per thread. K is walked KT = 16 at a time: the
 *   W tile (bf16 decoded once) and the x tile are staged k-major in workgroup memory so each
 *   thread reads one vec4 of 4 rows and one vec4 of 4 tokens per k. Row tile = workgroup
 *   (x, y) folded, token tile = workgroup_id.z. Workgroup memory: 8 KiB.
 * - `gemmSimple` (CPU adapters such as SwiftShader, where barriers cost far more than the
 *   arithmetic): no workgroup memory, no barriers. Each invocation computes SIMPLE_ROWS rows x
 *   SIMPLE_TOKENS tokens from global memory, unrolled over the register tile, so a gathered
 *   weight word serves SIMPLE_TOKENS tokens and a gathered x value SIMPLE_ROWS rows.
 *   Invocation = row block (global x, y folded), workgroup_id.z = token block.
 *
 * The caller's module declares K, N, `x`, `weight` (vec4<u32> when K % 8 == 0, else u32; `x`
 * as vec4<f32> in the simple variant when K % 8 == 0), `step` and `store(t, o, v)`.
 * Tails (rows past N, tokens past n_tokens, K not a multiple of the K tile) are masked.
 *
 * With `q8` the weight is 8-bit (engine/quant-q8.ts: int8 [N, K], 4 per word, then f32 scales
 * [N, K / 32]; K % 32 == 0), read as vec4<u32> (16 int8 values, half a scale block), and the
 * module also declares Q8_FNS: a value is its int8 times its block's scale, as in
 * f32_q8w_matvec. A 16-wide K tile is then one vec4 and one scale per row, never partial.
 */

/** Tiled GPU path: output tile of a workgroup and K values staged per barrier pair. */
export const GEMM_ROWS = 64;
export const GEMM_TOKENS = 64;
const KT = 16;
export const GEMM_WG = 256;

/** CPU path: register tile of one invocation, and invocations per workgroup. */
export const SIMPLE_ROWS = 4;
export const SIMPLE_TOKENS = 4;
export const SIMPLE_WG = 64;

/** Workgroup arrays and `fn gemm_tiled(tile, tok_tile, lid)`. */
export function gemmTiled(K: number, q8 = false): string {
  const vec8 = K % 8 === 0;
  const RG = GEMM_ROWS / 4; // row groups of 4 (threads along rows)
  const TG = GEMM_TOKENS / 4;
  const wLoad = q8
    ? `    // W tile: ${GEMM_ROWS} rows x ${KT} k = one vec4<u32> of int8 and one scale per row, stored k-major.
    if (lid < ${GEMM_ROWS}u) {
      var w = vec4<u32>(0u);
      var sc = 0.0;
      if (row0 + lid < N) { w = weight[((row0 + lid) * K + k0) / 16u]; sc = q8_scale(row0 + lid, k0); }
      for (var j = 0u; j < 4u; j++) {
        let v = i8x4(w[j]) * sc;
        let d = 4u * j * ${RG}u + lid / 4u;
        ws[d][lid % 4u] = v.x; ws[d + ${RG}u][lid % 4u] = v.y; ws[d + ${2 * RG}u][lid % 4u] = v.z; ws[d + ${3 * RG}u][lid % 4u] = v.w;
      }
    }`
    : vec8
    ? `    // W tile: ${GEMM_ROWS} rows x ${KT} k = ${(GEMM_ROWS * KT) / 8} vec4<u32> (8 bf16 each), stored k-major.
    if (lid < ${(GEMM_ROWS * KT) / 8}u) {
      let rr = lid / ${KT / 8}u;
      let kk = (lid % ${KT / 8}u) * 8u;
      var w = vec4<u32>(0u);
      if (row0 + rr < N && k0 + kk < K) { w = weight[((row0 + rr) * K + k0 + kk) / 8u]; }
      let c = rr % 4u;
      let d = kk * ${RG}u + rr / 4u;
      ws[d][c] = bf16_lo(w.x); ws[d + ${RG}u][c] = bf16_hi(w.x);
      ws[d + ${2 * RG}u][c] = bf16_lo(w.y); ws[d + ${3 * RG}u][c] = bf16_hi(w.y);
      ws[d + ${4 * RG}u][c] = bf16_lo(w.z); ws[d + ${5 * RG}u][c] = bf16_hi(w.z);
      ws[d + ${6 * RG}u][c] = bf16_lo(w.w); ws[d + ${7 * RG}u][c] = bf16_hi(w.w);
    }`
    : `    // W tile: ${GEMM_ROWS} rows x ${KT / 2} words (2 bf16 each), stored k-major.
    for (var i = 0u; i < ${(GEMM_ROWS * KT) / 2 / GEMM_WG}u; i++) {
      let e = lid + i * ${GEMM_WG}u;
      let rr = e / ${KT / 2}u;
      let kk = (e % ${KT / 2}u) * 2u;
      var w = 0u;
      if (row0 + rr < N && k0 + kk < K) { w = weight[((row0 + rr) * K + k0 + kk) / 2u]; }
      let d = kk * ${RG}u + rr / 4u;
      ws[d][rr % 4u] = bf16_lo(w);
      ws[d + ${RG}u][rr % 4u] = bf16_hi(w);
    }`;
  return /* wgsl */ `
var<workgroup> ws: array<vec4<f32>, ${KT * RG}>; // [k][row / 4], 4 rows per vec4
var<workgroup> xs: array<vec4<f32>, ${KT * TG}>; // [k][token / 4], 4 tokens per vec4

fn gemm_tiled(tile: u32, tok_tile: u32, lid: u32) {
  let row0 = tile * ${GEMM_ROWS}u;
  let tok0 = tok_tile * ${GEMM_TOKENS}u;
  let nt = step.n_tokens;
  let rg = lid % ${RG}u; // rows rg*4 .. rg*4+3 of the tile
  let tg = lid / ${RG}u; // tokens tg*4 .. tg*4+3
  var acc0 = vec4<f32>(0.0); // acc<j>[i]: row rg*4 + j, token tg*4 + i
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < K; k0 += ${KT}u) {
${wLoad}
    // x tile: ${GEMM_TOKENS} tokens x ${KT} k, ${(GEMM_TOKENS * KT) / GEMM_WG} per thread, stored k-major.
    for (var i = 0u; i < ${(GEMM_TOKENS * KT) / GEMM_WG}u; i++) {
      let e = lid + i * ${GEMM_WG}u;
      let tt = e / ${KT}u;
      let kk = e % ${KT}u;
      var v = 0.0;
      if (tok0 + tt < nt && k0 + kk < K) { v = x[(tok0 + tt) * K + k0 + kk]; }
      xs[kk * ${TG}u + tt / 4u][tt % 4u] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk++) {
      let w = ws[kk * ${RG}u + rg];
      let xv = xs[kk * ${TG}u + tg];
      acc0 += w.x * xv;
      acc1 += w.y * xv;
      acc2 += w.z * xv;
      acc3 += w.w * xv;
    }
    workgroupBarrier();
  }
  let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  for (var j = 0u; j < 4u; j++) {
    let o = row0 + rg * 4u + j;
    if (o >= N) { break; }
    for (var i = 0u; i < 4u; i++) {
      let t = tok0 + tg * 4u + i;
      if (t < nt) { store(t, o, accs[j][i]); }
    }
  }
}`;
}

/**
 * `fn gemm_simple(row0, tok0)`: rows row0 .. row0+R-1 x tokens tok0 .. tok0+TN-1, fully
 * unrolled over that register tile (R x TN scalar accumulators). Rows and tokens past the end
 * are clamped for loading and skipped for storing. TN = 1 is the one-token (decode) form.
 */
export function gemmSimple(K: number, R: number, TN: number, name: string, q8 = false): string {
  const vec8 = K % 8 === 0;
  const rows = [...Array(R).keys()];
  const toks = [...Array(TN).keys()];
  const lines: string[] = [];
  for (const r of rows) lines.push(q8 ? `  let r${r} = min(row0 + ${r}u, N - 1u); let wb${r} = r${r} * K16;` : `  let wb${r} = min(row0 + ${r}u, N - 1u) * ${vec8 ? 'K8' : 'K2'};`);
  for (const t of toks) lines.push(`  let xb${t} = min(tok0 + ${t}u, nt - 1u) * ${vec8 ? 'K4' : 'K'};`);
  for (const r of rows) for (const t of toks) lines.push(`  var a${r}_${t} = 0.0;`);
  if (q8) {
    // One step: 16 k per row (a vec4<u32> of int8 and its block's scale), four vec4<f32> of x per token.
    lines.push('  for (var u = 0u; u < K16; u++) {');
    for (const t of toks) lines.push(`    let x${t} = array<vec4<f32>, 4>(x[xb${t} + 4u * u], x[xb${t} + 4u * u + 1u], x[xb${t} + 4u * u + 2u], x[xb${t} + 4u * u + 3u]);`);
    for (const r of rows) {
      lines.push(`    let w${r} = weight[wb${r} + u]; let s${r} = q8_scale(r${r}, 16u * u);`);
      for (const t of toks) {
        lines.push(`    a${r}_${t} += s${r} * (dot(i8x4(w${r}.x), x${t}[0]) + dot(i8x4(w${r}.y), x${t}[1]) + dot(i8x4(w${r}.z), x${t}[2]) + dot(i8x4(w${r}.w), x${t}[3]));`);
      }
    }
  } else if (vec8) {
    // One step: 8 k per row (a vec4<u32>), two vec4<f32> of x per token.
    lines.push('  for (var u = 0u; u < K8; u++) {');
    for (const t of toks) lines.push(`    let xl${t} = x[xb${t} + 2u * u]; let xh${t} = x[xb${t} + 2u * u + 1u];`);
    for (const r of rows) {
      lines.push(`    let w${r} = weight[wb${r} + u];`);
      lines.push(`    let wl${r} = vec4<f32>(bf16_lo(w${r}.x), bf16_hi(w${r}.x), bf16_lo(w${r}.y), bf16_hi(w${r}.y));`);
      lines.push(`    let wh${r} = vec4<f32>(bf16_lo(w${r}.z), bf16_hi(w${r}.z), bf16_lo(w${r}.w), bf16_hi(w${r}.w));`);
      for (const t of toks) lines.push(`    a${r}_${t} += dot(wl${r}, xl${t}) + dot(wh${r}, xh${t});`);
    }
  } else {
    // One step: 2 k per row (a u32).
    lines.push('  for (var u = 0u; u < K2; u++) {');
    for (const t of toks) lines.push(`    let xl${t} = x[xb${t} + 2u * u]; let xh${t} = x[xb${t} + 2u * u + 1u];`);
    for (const r of rows) {
      lines.push(`    let w${r} = weight[wb${r} + u];`);
      lines.push(`    let wl${r} = bf16_lo(w${r}); let wh${r} = bf16_hi(w${r});`);
      for (const t of toks) lines.push(`    a${r}_${t} += wl${r} * xl${t} + wh${r} * xh${t};`);
    }
  }
  lines.push('  }');
  for (const r of rows) {
    lines.push(`  if (row0 + ${r}u < N) {`);
    for (const t of toks) lines.push(`    if (tok0 + ${t}u < nt) { store(tok0 + ${t}u, row0 + ${r}u, a${r}_${t}); }`);
    lines.push('  }');
  }
  return /* wgsl */ `
fn ${name}(row0: u32, tok0: u32) {
  let nt = step.n_tokens;
${lines.join('\n')}
}`;
}

/** WGSL constants gemmSimple reads. */
export const SIMPLE_CONSTS = /* wgsl */ `
const K2: u32 = K / 2u;
const K4: u32 = K / 4u;
const K8: u32 = K / 8u;`;

/**
 * What the q8 paths read besides `weight` (array<vec4<u32>>): i8x4 (four int8 of a word, low
 * byte first) and q8_scale(row, k), the f32 scale of the block holding W[row, k], stored after
 * the N x K int8 values.
 */
export const Q8_FNS = /* wgsl */ `
const K16: u32 = K / 16u;
fn i8x4(w: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}
fn q8_scale(row: u32, k: u32) -> f32 {
  let si = N * (K / 4u) + row * (K / 32u) + k / 32u;
  return bitcast<f32>(weight[si / 4u][si % 4u]);
}`;
