// Truncated (banded) scaled dot-product attention, forward and backward, fp32, for the CPU.
//
// Query i attends to the keys j with |i - j| <= w (the lecture's truncated self-attention;
// Longformer's sliding window), with an optional per-(head, offset) relative bias, key padding
// mask and attention dropout.  Rows with no allowed key give zeros, like
// seqattn.nn.attention.dense_attention.
// Loaded through ctypes by seqattn/nn/native.py; built by setup.py (-O3, AVX-512 F/DQ/BW/VL, -fopenmp).
//
// Why a kernel of our own: torch's SDPA on query blocks spends its time in GEMMs of about
// 32 x 64 x 160, where the CPU BLAS reaches under a third of the machine's matmul peak
// (docs/performance.md).  Here a panel of 16 queries keeps its scores in L1 and runs two
// register-blocked GEMMs around a vectorised softmax:
//   S^T = K_window Q_panel^T   24 keys x 16 queries per tile: one load of Q^T and 24 broadcasts
//                              of K per step of d (K packed with row stride D, Q^T transposed
//                              in registers, the 1/sqrt(D) scale folded in)
//   P^T = softmax over keys    elementwise across the 16 queries of a vector: band, padding and
//                              relative bias applied here, no horizontal reductions
//   O   = P V_window           (16 / (D / 16)) query rows x D per tile, over the keys of their band
// Scores are stored transposed (key-major) so the softmax needs no shuffles.  The backward
// (below, "backward") reads P back where the training forward saved it (probs, O(N w) floats),
// or recomputes it per panel from the log-sum-exp the forward saved instead, and runs three more
// GEMMs of the same shapes (four where it recomputes S).  Threads come from
// OpenMP: built with -fopenmp, the library uses the libgomp that torch has loaded, so it shares
// torch's thread pool instead of competing with its spinning workers (separate std::threads ran
// 1.3x slower, measured).  Vector code uses GCC/Clang vector extensions plus AVX-512 intrinsics
// and only builds for AVX-512; native.py calls it only on AVX-512 CPUs.
//
// Shapes (strides in elements; the last dimension of q, k, v, out is contiguous):
//   q, k, v, out: (B, H, N, D), strides of (B, H, N) in qs, ks, vs, os
//   pad: (B, N) uint8, 1 where the key is padding, row stride pad_b; or null
//   rbias: (H, 2w + 1 + 32), rbias[h, 16 + 2w - s] = bias[h, s] for the offset s = j - i + w
//          (the bias table reversed, 16 zeros at each end), row stride rbias_h; or null
//   lse:   (B, H, N) contiguous: log-sum-exp of each query's scores (written by a training
//          forward, read by the backward), or null
//   probs: (B, H, ceil(N / 16), 2w + 17, 16) contiguous, or null: the training forward's P for
//          the backward (see saved_panel), in place of lse
//   dout, dq, dk, dv: like q, k, v, own strides; dbias like rbias
//   dropout, seed: attention dropout (probability, 64-bit seed); see Dropout for the mask
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if !defined(__AVX512F__) || !defined(_OPENMP)
#error "build with AVX-512 (-mavx512f ...) and -fopenmp, as setup.py does"
#endif
#include <immintrin.h>
#include <omp.h>

namespace {

constexpr int L = 16;  // floats per vector
constexpr int PANEL = L;  // query rows per panel: one vector
constexpr int PACK_PANELS = 32;  // panels whose keys are packed at once
constexpr int GROUP = 4;  // panels whose dK and dV rows the backward adds at once (see backward_panels)
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));

inline vf load(const float* p) { vf x; std::memcpy(&x, p, sizeof x); return x; }
inline void store(float* p, vf x) { std::memcpy(p, &x, sizeof x); }
inline vf splat(float x) { return vf{} + x; }
// A broadcast that stays a memory operand of the FMA (the vector-extension splat becomes a
// register shuffle on port 5, which the FMAs need).
inline vf bcast(const float* p) { return (vf)_mm512_set1_ps(*p); }
inline vf fmadd(vf a, vf b, vf c) { return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }

// exp(x) for x <= 0, -inf included (gives 0): Cephes expf's reduction and degree-6 polynomial
// (relative error ~1e-7), 2^n applied by vscalefps, which also flushes large negative n to 0.
inline vf vexp(vf xv) {
  const __m512 x = (__m512)xv;
  const __mmask16 finite = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-INFINITY), _CMP_NEQ_OQ);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return (vf)_mm512_maskz_scalef_ps(finite, p, n);
}

// dst[c * 16 + r] = scale * src[r * stride + c] for a 16 x 16 block (three rounds of shuffles).
inline void transpose16(const float* src, int64_t stride, float* dst, float scale) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * stride);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int i = 0; i < 8; ++i) {
    _mm512_storeu_ps(dst + i * 16, _mm512_mul_ps(_mm512_shuffle_f32x4(t[i], t[i + 8], 0x88), s));
    _mm512_storeu_ps(dst + (i + 8) * 16, _mm512_mul_ps(_mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD), s));
  }
}

struct Args {
  const float *q, *k, *v, *rbias;
  float* out;
  float* lse;  // (B, H, N) contiguous, or null: log-sum-exp of each query's scores, for the backward
  float* probs;  // or null: P saved for the backward (see saved_panel)
  const uint8_t* pad;
  int64_t qs[3], ks[3], vs[3], os[3];  // strides of b, h, n
  int64_t pad_b, rbias_h;
  int B, H, N, D, w;
  float scale;
  float dropout;   // probability of dropping an attention weight; 0: no dropout
  uint64_t seed;   // of the dropout mask
  // Backward only: the output's gradient in, the inputs' gradients out (dk, dv zero on entry),
  // dbias (H, rbias_h) zero on entry and laid out like rbias, or null.
  const float* dout;
  float *dq, *dk, *dv, *dbias;
  int64_t dos[3], dqs[3], dks[3], dvs[3];
};

// Row n of sequence b, head h of a (B, H, N, D) tensor with strides s.
template <typename T>
inline T* at(T* x, const int64_t* s, int b, int h, int n) {
  return x + b * s[0] + h * s[1] + int64_t(n) * s[2];
}

// Asks for a row of D floats in L1.  Each forward panel prefetches the rows the next panel reads
// first (its queries and the 16 values it adds), fetched while this panel computes; their first
// touch otherwise stalls the next panel (7% of the forward at N = 16384, w = 64, A/B).  The same
// for the backward's rows (q, dO, dQ, dK, dV; measured twice) gained nothing, so it does not.
template <int D>
inline void prefetch_row(const float* row) {
  for (int d = 0; d < D; d += L) _mm_prefetch(reinterpret_cast<const char*>(row + d), _MM_HINT_T0);
}

// Rows of one sequence-head's K (or V) copied contiguously with row stride D, a compile-time
// constant, so that the 24 broadcasts of a score tile address off one register.  Refilled
// PACK_PANELS panels' worth at a time as a thread's panels move along the sequence.  Rows that
// already lie D apart (a contiguous (B, H, N, D) tensor) are read in place: the copy was 7% of
// the backward at N = 16384, w = 64 (backward 4-5% faster without it, medians of interleaved
// A/B; forward about 1%, since it packs K only).  Callers read rows [j0, j1) only.
struct Packed {
  std::vector<float> buf;
  int64_t bh = -1;
  int lo = 0, hi = 0;  // rows [lo, hi) are in buf
  Packed(int D, int w) : buf(size_t(D) * (PACK_PANELS * PANEL + 2 * w + PANEL), 0.f) {}
  // Pointer p with p + j * D = row j of src (the rows of sequence-head bh) for j0 <= j < j1.
  template <int D>
  const float* rows(const float* src, int64_t stride, int64_t bh_, int j0, int j1, int N, int w) {
    if (stride == D) return src;
    if (bh != bh_ || j1 > hi) {
      bh = bh_;
      lo = j0;
      hi = std::min(N, j0 + PACK_PANELS * PANEL + 2 * w + PANEL);
      for (int j = lo; j < hi; ++j)
        std::memcpy(&buf[size_t(j - lo) * D], src + j * stride, D * sizeof(float));
    }
    return buf.data() - int64_t(lo) * D;
  }
};

// The keys of one panel: its queries [r0, r0 + rows) see keys [j0, j1); key j is local row j - cs.
struct Band {
  int rows = 0, cs = 0, j0 = 0, j1 = 0;
  Band() = default;
  Band(const Args& a, int r0)
      : rows(std::min(PANEL, a.N - r0)), cs(r0 - a.w), j0(std::max(cs, 0)), j1(std::min(r0 + rows + a.w, a.N)) {}
  int first() const { return j0 - cs; }  // local key rows [first, last)
  int last() const { return j1 - cs; }
};

// The saved P of the panel at r0 of sequence-head bh, (2w + 17) x 16 floats, or null: local key
// rows [first, last) hold exp(s - m) for the panel's 16 queries (bias and masks applied, before
// dropout; m the row maximum), and row 2w + 16 holds 1 / sum for each query (0 for queries with
// no allowed key and past N), so that P = row * last row.  A training forward writes it (one
// non-temporal store per vector); the backward reads it instead of recomputing S = Q K^T and the
// exponentials, about 25% of its work, at the cost of (2w + 17) / Dh times q's memory.
template <typename T>
inline T* saved_panel(T* probs, const Args& a, int64_t bh, int r0) {
  if (!probs) return nullptr;
  const int64_t panels = (a.N + PANEL - 1) / PANEL;
  return probs + (bh * panels + r0 / PANEL) * int64_t(2 * a.w + PANEL + 1) * L;
}

// The bias and masks of a panel's scores.  Key j is in query i's band when i <= j - cs <= i + 2w,
// so the local key rows jj in [PANEL - 1, 2w] are in every band of the panel: only the edge rows
// before and after them need the band mask.
struct Masks {
  const uint8_t* pad;   // of sequence b, or null
  const float* rbias;   // of head h, or null
  int w, cs;
  Masks(const Args& a, const Band& bd, int b, int h)
      : pad(a.pad ? a.pad + b * a.pad_b : nullptr), rbias(a.rbias ? a.rbias + h * a.rbias_h : nullptr),
        w(a.w), cs(bd.cs) {}
  bool any() const { return pad || rbias; }
  // Scores x of local key row jj (one per query of the panel) with bias[jj - i] added, and -inf
  // where the key is padding or, on an edge row, outside the query's band.
  vf apply(vf x, int jj, bool edge) const {
    if (rbias) x += load(rbias + (L + 2 * w - jj));
    if (edge) {
      const vi iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
      x = (iota <= jj) & (iota >= jj - 2 * w) ? x : splat(-INFINITY);
    }
    if (pad && pad[cs + jj]) x = splat(-INFINITY);
    return x;
  }
  // f(jj, edge) for the panel's local key rows in order.
  template <typename F>
  void for_each_key(const Band& bd, F f) const {
    const int first = bd.first(), last = bd.last();
    const int mid_lo = std::max(first, PANEL - 1), mid_hi = std::max(mid_lo, std::min(last, 2 * w + 1));
    for (int jj = first; jj < std::min(last, mid_lo); ++jj) f(jj, true);
    for (int jj = mid_lo; jj < mid_hi; ++jj) f(jj, false);
    for (int jj = mid_hi; jj < last; ++jj) f(jj, true);
  }
};

// Attention dropout with a mask that is a function of (seed, b * H + h, query i, key j), so that
// the backward regenerates the forward's mask instead of storing it (as FlashAttention does with
// Philox; here a cheaper hash, murmur3's 32-bit finaliser, on two levels):
//   key = fmix32(seed_lo ^ fmix32(bh * 0x9E3779B9 + seed_hi))      per sequence-head bh = b * H + h
//   row_i = fmix32(i * 0x85EBCA77 + key)                          per query i
//   keep(i, j) = fmix32(row_i ^ j * 0xC2B2AE3D) >= floor(p * 2^32)  per key j
// in unsigned 32-bit arithmetic (wrapping), seed_lo / seed_hi the low / high half of the seed.
// Both levels are bijections, so no two queries of a head, and no two keys of a query, share a
// draw.  Kept weights are scaled by 1 / (1 - p) (Srivastava et al. 2014, inverted dropout); the
// log-sum-exp stays that of the undropped scores.  tests/nn/test_native.py rebuilds the mask in
// torch from this definition.
template <typename T>
inline T fmix32(T x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

struct Dropout {
  bool on;
  uint32_t threshold = 0;
  float rescale = 1.f;  // 1 / (1 - p)
  vu row;               // row_i for the panel's 16 queries
  Dropout(const Args& a, int64_t bh, int r0) : on(a.dropout > 0.f) {
    if (!on) return;
    threshold = uint32_t(std::min(double(a.dropout) * 4294967296.0, 4294967295.0));
    rescale = 1.f / (1.f - a.dropout);
    const uint32_t key = fmix32(uint32_t(a.seed) ^ fmix32(uint32_t(bh) * 0x9E3779B9u + uint32_t(a.seed >> 32)));
    const vu iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    row = fmix32((iota + uint32_t(r0)) * 0x85EBCA77u + key);
  }
  // Nonzero lanes: the queries that keep their weight on key j.
  vi keep(int j) const { return fmix32(row ^ (uint32_t(j) * 0xC2B2AE3Du)) >= threshold; }
};

// xt[d * 16 + i] = scale * x[i, d] for the panel's rows; missing rows of the last panel are zeros.
template <int D>
inline void transpose_panel(const float* x, int64_t stride, int rows, float scale, float* xt) {
  if (rows == PANEL) {
    for (int d0 = 0; d0 < D; d0 += L) transpose16(x + d0, stride, xt + d0 * L, scale);
  } else {
    for (int i = 0; i < PANEL; ++i)
      for (int d = 0; d < D; ++d) xt[d * L + i] = i < rows ? x[i * stride + d] * scale : 0.f;
  }
}

// acc[r] = sum_d K[j0 + r, d] * Qt[d, :] for R keys: scores of R keys against the panel's 16
// queries, one vector per key.  R accumulators, one load and R broadcasts per d.
template <int R, int D>
inline void scores_tile(const float* k, const float* qt, float* st) {
  vf acc[R];
  for (int r = 0; r < R; ++r) acc[r] = vf{};
  for (int d = 0; d < D; ++d) {
    vf qd = load(qt + d * L);
#pragma GCC unroll 24
    for (int r = 0; r < R; ++r) acc[r] = fmadd(bcast(k + r * D + d), qd, acc[r]);
  }
  for (int r = 0; r < R; ++r) store(st + r * L, acc[r]);
}

// St[j - cs, :] = K[j] Qt for the panel's keys (k packed: row j at k + j * D).
template <int D>
inline void scores(const float* k, const float* qt, const Band& bd, float* st) {
  int j = bd.j0;
  for (; j + 24 <= bd.j1; j += 24) scores_tile<24, D>(k + int64_t(j) * D, qt, st + (j - bd.cs) * L);
  for (; j + 8 <= bd.j1; j += 8) scores_tile<8, D>(k + int64_t(j) * D, qt, st + (j - bd.cs) * L);
  for (; j < bd.j1; ++j) scores_tile<1, D>(k + int64_t(j) * D, qt, st + (j - bd.cs) * L);
}

// Writes a vector of output (the forward's O, the backward's dQ) with a non-temporal store where
// dst is 64-byte aligned: the rows are written once and not read again by the kernel, so the store
// skips reading the line in first (read-for-ownership) and keeps it out of the caches the band
// needs.  Forward at N = 16384, w = 64: 3-15% faster across interleaved A/B runs (w = 16: 11%,
// w = 256: parity), a following 256 x 256 output projection no slower (docs/performance.md).
// run() fences before the threads join.
inline void store_out(float* dst, vf x) {
  if ((reinterpret_cast<uintptr_t>(dst) & 63) == 0)
    _mm512_stream_ps(dst, (__m512)x);
  else
    store(dst, x);
}

// o[i0 + r, :] = scale[i0 + r] * sum_j P[j, i0 + r] V[j, :] for RP query rows, keys [j0, j1).
template <int RP, int DT>
inline void values_tile(const float* v, int64_t v_row, const float* pt, int i0, int j0, int j1,
                        float* out, int64_t o_row, const float* scale, int rows) {
  vf acc[RP][DT];
  for (int r = 0; r < RP; ++r)
    for (int t = 0; t < DT; ++t) acc[r][t] = vf{};
  for (int j = j0; j < j1; ++j) {
    const float* vr = v + int64_t(j) * v_row;
    vf vv[DT];
    for (int t = 0; t < DT; ++t) vv[t] = load(vr + t * L);
    const float* p = pt + int64_t(j) * L + i0;
#pragma GCC unroll 16
    for (int r = 0; r < RP; ++r) {
      vf pr = bcast(p + r);
      for (int t = 0; t < DT; ++t) acc[r][t] = fmadd(pr, vv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < RP && i0 + r < rows; ++r)
    for (int t = 0; t < DT; ++t) store_out(out + (i0 + r) * o_row + t * L, acc[r][t] * scale[i0 + r]);
}

// out[i] = scale[i] * sum_j P[j, i] V[j] for the panel's queries, each row group over its own
// band; st holds P transposed (local key rows), v + j * v_row is row j of V.
template <int D>
inline void values(const float* v, int64_t v_row, const float* st, const Band& bd, int w, float* out,
                   int64_t o_row, const float* scale) {
  constexpr int DT = D / L, RP = std::max(1, std::min(PANEL, 16 / DT));
  const float* pt = st - int64_t(bd.cs) * L;  // pt[j * L + i] = P[j, query i of the panel]
  for (int i0 = 0; i0 < bd.rows; i0 += RP) {
    const int lo = std::max(bd.j0, bd.cs + i0), hi = std::min(bd.j1, bd.cs + i0 + RP + 2 * w);
    values_tile<RP, DT>(v, v_row, pt, i0, lo, hi, out, o_row, scale, bd.rows);
  }
}

struct Scratch {
  std::vector<float> qt, st;
  Packed k;
  explicit Scratch(const Args& a)
      : qt(size_t(a.D) * PANEL, 0.f), st(size_t(2 * a.w + PANEL + 32) * PANEL, 0.f), k(a.D, a.w) {}
};

// One panel: queries [r0, r0 + 16) of sequence b, head h.  Scores are kept transposed, St[key, query],
// so the softmax over keys is elementwise across one vector of 16 queries.
template <int D>
void panel(const Args& a, int b, int h, int r0, Scratch& sc) {
  const Band bd(a, r0);
  const int w = a.w;
  const int64_t bh = int64_t(b) * a.H + h;
  const float* k = sc.k.rows<D>(at(a.k, a.ks, b, h, 0), a.ks[2], bh, bd.j0, bd.j1, a.N, w);
  float* qt = sc.qt.data();
  float* st = sc.st.data();
  for (int i = 0; i < PANEL && r0 + PANEL + i < a.N; ++i) {
    prefetch_row<D>(at(a.q, a.qs, b, h, r0 + PANEL + i));
    prefetch_row<D>(at(a.v, a.vs, b, h, std::min(bd.j1 + i, a.N - 1)));
  }
  transpose_panel<D>(at(a.q, a.qs, b, h, r0), a.qs[2], bd.rows, a.scale, qt);
  scores<D>(k, qt, bd, st);

  // Softmax over keys, per query, elementwise across the panel's 16 queries.
  const Masks masks(a, bd, b, h);
  const vf neg_inf = splat(-INFINITY);
  vf m = neg_inf;
  masks.for_each_key(bd, [&](int jj, bool edge) {
    vf x = load(st + jj * L);
    if (edge || masks.any()) {
      x = masks.apply(x, jj, edge);
      store(st + jj * L, x);
    }
    m = m > x ? m : x;
  });
  vi has_key = m != neg_inf;
  m = has_key ? m : vf{};  // queries with no allowed key: every p below is exp(-inf) = 0
  vf sum = vf{};
  const Dropout drop(a, bh, r0);
  float* saved = saved_panel(a.probs, a, bh, r0);
  for (int jj = bd.first(); jj < bd.last(); ++jj) {
    vf p = vexp(load(st + jj * L) - m);
    sum += p;
    if (saved) store_out(saved + jj * L, p);
    if (drop.on) p = drop.keep(bd.cs + jj) ? p : vf{};
    store(st + jj * L, p);
  }
  float inv[PANEL];  // 1 / sum, times 1 / (1 - p) for the kept weights under dropout
  for (int i = 0; i < PANEL; ++i) inv[i] = has_key[i] ? drop.rescale / sum[i] : 0.f;
  if (saved) {
    vf norm;
    for (int i = 0; i < PANEL; ++i) norm[i] = i < bd.rows && has_key[i] ? 1.f / sum[i] : 0.f;
    store_out(saved + (2 * w + PANEL) * L, norm);
  }
  if (a.lse) {  // +inf for rows without keys, so that the backward's exp(s - lse) is 0 there
    float* lse = a.lse + bh * a.N + r0;
    for (int i = 0; i < bd.rows; ++i) lse[i] = has_key[i] ? m[i] + std::log(sum[i]) : INFINITY;
  }
  values<D>(at(a.v, a.vs, b, h, 0), a.vs[2], st, bd, w, at(a.out, a.os, b, h, r0), a.os[2], inv);
}

// ---------------------------------------------------------------------------------- backward
//
// FlashAttention-2's backward (Dao 2023, Algorithm 2) on the band, one panel of 16 queries at a
// time, with P read back from the forward's saved probs or, where it saved lse instead,
// recomputed (FlashAttention's way, which keeps training memory O(N d)):
//   S^T = K Q^T (scaled),  P^T = exp(S^T + bias - lse) masked,  dP^T = V dO^T,
//   dS^T = P^T (dP^T - delta),  delta_i = sum_j P_ij dP_ij,
//   dQ = scale dS K (rows of this panel only),  dK += scale dS^T Q,  dV += P^T dO,  dbias += dS.
// FlashAttention computes delta_i as dO_i . O_i, the same number since O = P V; summing over the
// band from the P and dP already in L1 saves reading O (16 MiB at N = 16384, h = 4, d = 64):
// backward 28.6 -> 27.5 ms there, 2 threads, A/B.  Under dropout (mask M, Z = P M / (1 - p) the
// weights the forward used): dV += Z^T dO and dP = (V dO^T) M / (1 - p), and delta_i = sum_j P_ij dP_ij
// (= dO_i . O_i still).
// dQ rows belong to one panel.  dK and dV rows are shared by the panels whose bands overlap:
// each thread takes a contiguous range of panels and adds into dK/dV directly, except for the
// rows within w of either end of its range, which another thread may also touch: those go to a
// per-thread buffer that is added in after the threads join.  dK and dV need not be zero on entry:
// a row a thread owns is stored, not added, by the first panel whose band reaches it (panels move
// along the sequence, so those are the keys past the previous panel's band), and the shared rows
// are zeroed after the join, before the buffers are added in.  This saves the caller a pass that
// zeroes them (2 x 16 MiB at N = 16384, h = 4, d = 64) and the kernel reading the zeros back.

// This thread's dK/dV rows that another thread may also write: keys [a_lo, a_lo + 2w) of
// sequence-head bh_a (before its first panel) and [z_lo, z_lo + 2w) of bh_z (after its last).
struct Shared {
  int64_t bh_a = -1, bh_z = -1;
  int a_lo = 0, z_lo = 0, span = 0;
  std::vector<float> dk, dv, dbias;

  void init(const Args& a, int64_t first, int64_t last, int64_t panels) {
    span = 2 * a.w;
    if (first % panels) {
      bh_a = first / panels;
      a_lo = int(first % panels) * PANEL - a.w;
    }
    const int64_t end = (last - 1) % panels + 1;  // one past the range's last panel in bh_z
    if (end < panels) {
      bh_z = (last - 1) / panels;
      z_lo = int(end) * PANEL - a.w;
    }
    dk.assign(size_t(2 * span) * a.D, 0.f);
    dv.assign(size_t(2 * span) * a.D, 0.f);
    if (a.dbias) dbias.assign(size_t(a.H) * a.rbias_h, 0.f);
  }
  // Row of key j of sequence-head bh in the buffers, or -1 where this thread alone writes it.
  int slot(int64_t bh, int j) const {
    if (bh == bh_a && j >= a_lo && j < a_lo + span) return j - a_lo;
    if (bh == bh_z && j >= z_lo && j < z_lo + span) return span + j - z_lo;
    return -1;
  }
  // f(s, dk_row, dv_row) for each output row of the two zones, s its row in the buffers.
  template <typename F>
  void for_each_row(const Args& a, F f) const {
    for (int zone = 0; zone < 2; ++zone) {
      const int64_t bh = zone ? bh_z : bh_a;
      const int lo = zone ? z_lo : a_lo;
      if (bh < 0) continue;
      const int b = int(bh / a.H), h = int(bh % a.H);
      for (int j = std::max(lo, 0); j < std::min(lo + span, a.N); ++j) {
        const int s = slot(bh, j);
        if (s != zone * span + j - lo) continue;  // the row lives in the other zone
        f(s, at(a.dk, a.dks, b, h, j), at(a.dv, a.dvs, b, h, j));
      }
    }
  }
  // Zeroes the zones' output rows (after the join; no thread writes them directly).
  void clear(const Args& a) const {
    for_each_row(a, [&](int, float* dk_row, float* dv_row) {
      std::fill_n(dk_row, a.D, 0.f);
      std::fill_n(dv_row, a.D, 0.f);
    });
  }
  // Adds the buffers into the outputs (one thread at a time, after every thread's clear).
  void flush(const Args& a) const {
    for_each_row(a, [&](int s, float* dk_row, float* dv_row) {
      for (int d = 0; d < a.D; ++d) {
        dk_row[d] += dk[size_t(s) * a.D + d];
        dv_row[d] += dv[size_t(s) * a.D + d];
      }
    });
    for (size_t i = 0; i < dbias.size(); ++i) a.dbias[i] += dbias[i];
  }
};

// acc[r, :] += sum_i X[i, :] P[j0 + r, i] over one panel's rows: RK key rows x D, one load of X's
// row and RK broadcasts of P^T per query.
template <int RK, int DT>
inline void keys_tile(const float* pt, const float* x, int64_t x_row, int rows, vf (&acc)[RK][DT]) {
  for (int i = 0; i < rows; ++i) {
    vf xv[DT];
    for (int t = 0; t < DT; ++t) xv[t] = load(x + i * x_row + t * L);
#pragma GCC unroll 16
    for (int r = 0; r < RK; ++r) {
      vf p = bcast(pt + r * L + i);
      for (int t = 0; t < DT; ++t) acc[r][t] = fmadd(p, xv[t], acc[r][t]);
    }
  }
}

// One panel's part of dK or dV: P^T (dS^T or P^T of its queries, local key rows), its band, its
// rows of X (Q or dO).
struct KeysPart {
  const float* pt;  // pt[j * L + i] = P[j, query i]
  const Band* bd;
  const float* x;
};

// dst(j) += scale * sum_i P[j, i] X[i] for keys [j0, j1), over the queries of the given parts (panels
// whose bands all reach those keys).  dst(j, first) gives key j's row and sets first where the row
// is written here for the first time (stored, not added).
template <int D, typename Row>
inline void keys_segment(const KeysPart* parts, int n, int j0, int j1, int64_t x_row, float scale, Row dst) {
  constexpr int DT = D / L, RK = std::max(1, 16 / DT);
  for (int j = j0; j < j1; j += RK) {
    vf acc[RK][DT];
    for (int r = 0; r < RK; ++r)
      for (int t = 0; t < DT; ++t) acc[r][t] = vf{};
    for (int p = 0; p < n; ++p)  // rows past j1: scratch, unused
      keys_tile<RK, DT>(parts[p].pt + int64_t(j) * L, parts[p].x, x_row, parts[p].bd->rows, acc);
    for (int r = 0; r < RK && j + r < j1; ++r) {
      bool first;
      float* row = dst(j + r, first);
      for (int t = 0; t < DT; ++t) store(row + t * L, (first ? vf{} : load(row + t * L)) + acc[r][t] * scale);
    }
  }
}

// dK (P = dS, X = Q) or dV (P, dO) rows for the keys of n consecutive panels: the key range is cut
// where a band begins or ends, and each piece is read and written once, summed over the panels
// that reach it.
template <int D, typename Row>
inline void add_to_keys(const KeysPart* parts, int n, int64_t x_row, float scale, Row dst) {
  int cut[2 * GROUP], m = 0;
  for (int i = 0; i < n; ++i) {
    cut[m++] = parts[i].bd->j0;
    cut[m++] = parts[i].bd->j1;
  }
  std::sort(cut, cut + m);
  for (int c = 0; c + 1 < m; ++c) {
    if (cut[c] == cut[c + 1]) continue;
    KeysPart reach[GROUP];
    int count = 0;
    for (int i = 0; i < n; ++i)
      if (parts[i].bd->j0 <= cut[c] && cut[c + 1] <= parts[i].bd->j1) reach[count++] = parts[i];
    keys_segment<D>(reach, count, cut[c], cut[c + 1], x_row, scale, dst);
  }
}

struct BackScratch {
  std::vector<float> qt, dot, st[GROUP], dst[GROUP];  // P^T and dS^T of each panel of a group
  Packed k, v;
  explicit BackScratch(const Args& a)
      : qt(size_t(a.D) * PANEL, 0.f), dot(size_t(a.D) * PANEL, 0.f), k(a.D, a.w), v(a.D, a.w) {
    for (int i = 0; i < GROUP; ++i) {
      st[i].assign(size_t(2 * a.w + PANEL + 32) * PANEL, 0.f);
      dst[i].assign(st[i].size(), 0.f);
    }
  }
};

// One panel's backward up to dQ: leaves P^T (Z^T under dropout) in st and dS^T in dst, local key
// rows of bd, for the dK and dV products (backward_panels).
template <int D>
void backward_panel(const Args& a, int b, int h, int r0, const Band& bd, BackScratch& sc, Shared& sh,
                    float* st, float* dst) {
  const int w = a.w;
  const int64_t bh = int64_t(b) * a.H + h;
  const float* k = sc.k.rows<D>(at(a.k, a.ks, b, h, 0), a.ks[2], bh, bd.j0, bd.j1, a.N, w);
  const float* v = sc.v.rows<D>(at(a.v, a.vs, b, h, 0), a.vs[2], bh, bd.j0, bd.j1, a.N, w);
  const float* q = at(a.q, a.qs, b, h, r0);
  const float* dout = at(a.dout, a.dos, b, h, r0);
  const float* saved = saved_panel<const float>(a.probs, a, bh, r0);
  if (!saved) {
    transpose_panel<D>(q, a.qs[2], bd.rows, a.scale, sc.qt.data());
    scores<D>(k, sc.qt.data(), bd, st);  // S^T
  }
  transpose_panel<D>(dout, a.dos[2], bd.rows, 1.f, sc.dot.data());
  scores<D>(v, sc.dot.data(), bd, dst);  // dP^T

  // P^T (saved, or exp(S^T + bias - lse)) and delta_i = sum_j P_ij dP_ij (see above); then
  // dS^T = P^T (dP^T - delta).
  const Dropout drop(a, bh, r0);
  vf delta = vf{};
  auto take = [&](int jj, vf p) {
    vf dp = load(dst + jj * L);
    if (drop.on) {
      dp = drop.keep(bd.cs + jj) ? dp * drop.rescale : vf{};
      store(dst + jj * L, dp);
    }
    store(st + jj * L, p);
    delta = fmadd(p, dp, delta);
  };
  if (saved) {
    const vf norm = load(saved + (2 * w + PANEL) * L);
    for (int jj = bd.first(); jj < bd.last(); ++jj) take(jj, load(saved + jj * L) * norm);
  } else {
    vf lse = splat(INFINITY);  // missing rows: P = 0, so dS = 0
    for (int i = 0; i < bd.rows; ++i) lse[i] = a.lse[bh * a.N + r0 + i];
    const Masks masks(a, bd, b, h);
    masks.for_each_key(bd, [&](int jj, bool edge) { take(jj, vexp(masks.apply(load(st + jj * L), jj, edge) - lse)); });
  }
  float* dbias = a.dbias ? sh.dbias.data() + h * a.rbias_h : nullptr;
  if (!drop.on && !dbias) {  // the usual case, in a loop without branches: 1% of the backward at w = 256
    for (int jj = bd.first(); jj < bd.last(); ++jj)
      store(dst + jj * L, load(st + jj * L) * (load(dst + jj * L) - delta));
  } else {
    for (int jj = bd.first(); jj < bd.last(); ++jj) {
      vf p = load(st + jj * L);
      vf ds = p * (load(dst + jj * L) - delta);
      store(dst + jj * L, ds);
      if (drop.on) store(st + jj * L, drop.keep(bd.cs + jj) ? p * drop.rescale : vf{});  // Z, for dV
      if (dbias) store(dbias + (L + 2 * w - jj), load(dbias + (L + 2 * w - jj)) + ds);  // bias[jj - i]
    }
  }

  float scale[PANEL];
  std::fill(scale, scale + PANEL, a.scale);
  values<D>(k, D, dst, bd, w, at(a.dq, a.dqs, b, h, r0), a.dqs[2], scale);  // dQ = scale dS K
}

// The backward of n <= GROUP consecutive panels from r0: each panel's dQ, then dK and dV over
// the keys of their bands, each key's row read and written once for the group.  Panel by panel,
// each dK/dV row was read and written by every panel whose band reaches it, 2w / 16 + 1 times
// (9 at w = 64), from L2: at N = 16384, w = 64 (1 thread) dK and dV took 62 of the backward's
// 139 Mcycles, 47-50 with their rows redirected to an L1 scratch.  Interleaved A/B, 2 threads,
// backward medians: 16384 x 64 31.2 -> 28.0 ms (groups of 2: 29.7), w = 16 14.6 -> 13.7,
// w = 256 109.3 -> 100.3, 65536 x 64 128 -> 114; groups of 8: no faster at w = 64 and 8% slower
// at w = 256.
template <int D>
void backward_panels(const Args& a, int b, int h, int r0, int n, BackScratch& sc, Shared& sh) {
  Band bd[GROUP];
  for (int i = 0; i < n; ++i) {
    bd[i] = Band(a, r0 + i * PANEL);
    backward_panel<D>(a, b, h, r0 + i * PANEL, bd[i], sc, sh, sc.st[i].data(), sc.dst[i].data());
  }
  const int64_t bh = int64_t(b) * a.H + h;
  // Keys before the band of the panel before the group (which ends at r0 + w) were reached before.
  const int fresh = r0 == 0 ? 0 : r0 + a.w;
  // out(j) += scale * sum_i P[j, i] X[i] over the group, P^T in pt[i] for panel i; rows another
  // thread may also write go to this thread's buffer `shared` instead.
  auto add = [&](const std::vector<float>* pt, const float* x, int64_t x_row, float scale, float* out,
                 int64_t out_row, std::vector<float>& shared) {
    KeysPart parts[GROUP];
    for (int i = 0; i < n; ++i)
      parts[i] = KeysPart{pt[i].data() - int64_t(bd[i].cs) * L, &bd[i], x + int64_t(i) * PANEL * x_row};
    add_to_keys<D>(parts, n, x_row, scale, [&](int j, bool& first) {
      const int s = sh.slot(bh, j);
      first = s < 0 && j >= fresh;
      return s < 0 ? out + int64_t(j) * out_row : shared.data() + size_t(s) * D;
    });
  };
  // dK = scale dS^T Q, dV = P^T dO
  add(sc.dst, at(a.q, a.qs, b, h, r0), a.qs[2], a.scale, at(a.dk, a.dks, b, h, 0), a.dks[2], sh.dk);
  add(sc.st, at(a.dout, a.dos, b, h, r0), a.dos[2], 1.f, at(a.dv, a.dvs, b, h, 0), a.dvs[2], sh.dv);
}

template <int D>
void run(const Args& a, int threads, bool backward) {
  const int64_t panels = (a.N + PANEL - 1) / PANEL;
  const int64_t items = int64_t(a.B) * a.H * panels;
  threads = int(std::max<int64_t>(1, std::min<int64_t>(threads, items)));
  std::vector<Shared> shared(backward ? threads : 0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t first = items * t / n, last = items * (t + 1) / n;
    if (backward) {
      BackScratch sc(a);
      shared[t].init(a, first, last, panels);
      for (int64_t item = first; item < last;) {
        const int64_t bh = item / panels;
        int n = 1;  // the group: this thread's next panels of the same sequence and head
        while (n < GROUP && item + n < last && (item + n) % panels != 0) ++n;
        backward_panels<D>(a, int(bh / a.H), int(bh % a.H), int(item % panels) * PANEL, n, sc, shared[t]);
        item += n;
      }
    } else {
      Scratch sc(a);
      for (int64_t item = first; item < last; ++item) {
        const int64_t bh = item / panels;
        panel<D>(a, int(bh / a.H), int(bh % a.H), int(item % panels) * PANEL, sc);
      }
    }
    _mm_sfence();  // the non-temporal stores of store_out are visible before the threads join
  }
  for (const Shared& sh : shared) sh.clear(a);
  for (const Shared& sh : shared) sh.flush(a);
}

int dispatch(const Args& a, int threads, bool backward) {
  switch (a.D) {
    case 16: run<16>(a, threads, backward); return 0;
    case 32: run<32>(a, threads, backward); return 0;
    case 64: run<64>(a, threads, backward); return 0;
    case 128: run<128>(a, threads, backward); return 0;
    default: return 1;
  }
}

Args common(const float* q, const int64_t* qs, const float* k, const int64_t* ks, const float* v,
            const int64_t* vs, float* out, const int64_t* os, float* lse, float* probs, const uint8_t* pad,
            int64_t pad_b, const float* rbias, int64_t rbias_h, float dropout, uint64_t seed, int B, int H,
            int N, int D, int w, float scale) {
  Args a{};
  a.q = q; a.k = k; a.v = v; a.out = out; a.lse = lse; a.probs = probs; a.pad = pad; a.rbias = rbias;
  for (int t = 0; t < 3; ++t) { a.qs[t] = qs[t]; a.ks[t] = ks[t]; a.vs[t] = vs[t]; a.os[t] = os[t]; }
  a.pad_b = pad_b; a.rbias_h = rbias_h;
  a.B = B; a.H = H; a.N = N; a.D = D; a.w = w; a.scale = scale;
  a.dropout = dropout; a.seed = seed;
  return a;
}

}  // namespace

extern "C" {

// The version of the signatures below; seqattn/nn/native.py uses a build only where it matches
// (2: the backward no longer takes the forward's output; 3: both take probs).
int seqattn_banded_abi() { return 3; }

// out = attention(q, k, v).  A training forward also fills lse (B, H, N) with each query's
// log-sum-exp or probs with its P (see saved_panel), for the backward; both may be null.
// dropout in [0, 1): attention dropout with the mask of (seed, b, h, i, j) (see Dropout).
// Returns 0 on success, 1 for an unsupported head size (the caller falls back to torch).
int seqattn_banded_forward(const float* q, const int64_t* qs, const float* k, const int64_t* ks,
                           const float* v, const int64_t* vs, float* out, const int64_t* os, float* lse,
                           float* probs, const uint8_t* pad, int64_t pad_b, const float* rbias,
                           int64_t rbias_h, float dropout, uint64_t seed, int B, int H, int N, int D, int w,
                           float scale, int threads) {
  const Args a = common(q, qs, k, ks, v, vs, out, os, lse, probs, pad, pad_b, rbias, rbias_h, dropout, seed, B,
                        H, N, D, w, scale);
  return dispatch(a, threads, false);
}

// Gradients of the forward above, given its probs, or its lse where probs is null, and the same
// dropout and seed (the output itself is not needed): dq, dk and dv are overwritten; dbias
// ((H, rbias_h) laid out like rbias, or null) must be zero on entry.  Returns as the forward.
int seqattn_banded_backward(const float* q, const int64_t* qs, const float* k, const int64_t* ks,
                            const float* v, const int64_t* vs, const float* lse, const float* probs,
                            const float* dout, const int64_t* dos, float* dq, const int64_t* dqs,
                            float* dk, const int64_t* dks, float* dv, const int64_t* dvs, const uint8_t* pad,
                            int64_t pad_b, const float* rbias, int64_t rbias_h, float* dbias, float dropout,
                            uint64_t seed, int B, int H, int N, int D, int w, float scale, int threads) {
  const int64_t no_strides[3] = {0, 0, 0};
  Args a = common(q, qs, k, ks, v, vs, nullptr, no_strides, const_cast<float*>(lse), const_cast<float*>(probs),
                  pad, pad_b, rbias, rbias_h, dropout, seed, B, H, N, D, w, scale);
  a.dout = dout; a.dq = dq; a.dk = dk; a.dv = dv; a.dbias = dbias;
  for (int t = 0; t < 3; ++t) { a.dos[t] = dos[t]; a.dqs[t] = dqs[t]; a.dks[t] = dks[t]; a.dvs[t] = dvs[t]; }
  return dispatch(a, threads, true);
}

}
