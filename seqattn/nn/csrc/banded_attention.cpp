// Truncated (banded) scaled dot-product attention, forward only, fp32, for the CPU.
//
// Query i attends to the keys j with |i - j| <= w (the lecture's truncated self-attention;
// Longformer's sliding window), with an optional per-(head, offset) relative bias and key
// padding mask.  Rows with no allowed key give zeros, like seqattn.nn.attention.dense_attention.
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
// Scores are stored transposed (key-major) so the softmax needs no shuffles.  Threads come from
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
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

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
  const uint8_t* pad;
  int64_t qs[3], ks[3], vs[3], os[3];  // strides of b, h, n
  int64_t pad_b, rbias_h;
  int B, H, N, D, w;
  float scale;
};

struct Scratch {
  std::vector<float> qt, st, k;
  int64_t bh = -1;
  int k_lo = 0, k_hi = 0;  // keys [k_lo, k_hi) of sequence-head bh are packed in k
  explicit Scratch(const Args& a) {
    int keys = 2 * a.w + PANEL + 32;
    qt.assign(size_t(a.D) * PANEL, 0.f);
    st.assign(size_t(keys) * PANEL, 0.f);
    k.assign(size_t(a.D) * (PACK_PANELS * PANEL + keys), 0.f);
  }
};

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

// o[r, :] += sum_j P[j, i0 + r] V[j, :] for RP query rows, keys [j0, j1).
template <int RP, int DT>
inline void values_tile(const float* v, int64_t v_row, const float* pt, int i0, int j0, int j1,
                        float* out, int64_t o_row, const float* inv, int rows) {
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
    for (int t = 0; t < DT; ++t) store(out + (i0 + r) * o_row + t * L, acc[r][t] * inv[i0 + r]);
}

// One panel: queries [r0, r0 + 16) of sequence b, head h.  Scores are kept transposed, St[key, query],
// so the softmax over keys is elementwise across one vector of 16 queries.
template <int D>
void panel(const Args& a, int b, int h, int r0, Scratch& sc) {
  const int rows = std::min(PANEL, a.N - r0);
  const int w = a.w;
  const int cs = r0 - w;                        // key of local key row 0
  const int j0 = std::max(cs, 0);               // keys that exist: [j0, j1)
  const int j1 = std::min(r0 + rows + w, a.N);
  const float* q = a.q + b * a.qs[0] + h * a.qs[1] + int64_t(r0) * a.qs[2];
  // Keys packed contiguously (row stride D, a compile-time constant, so the 24 broadcasts of a
  // score tile address off one register), PACK_PANELS panels' worth at a time.
  const int64_t bh = int64_t(b) * a.H + h;
  if (sc.bh != bh || j1 > sc.k_hi) {
    sc.bh = bh;
    sc.k_lo = j0;
    sc.k_hi = std::min(a.N, j0 + PACK_PANELS * PANEL + 2 * w + PANEL);
    const float* src = a.k + b * a.ks[0] + h * a.ks[1];
    for (int j = sc.k_lo; j < sc.k_hi; ++j)
      std::memcpy(&sc.k[size_t(j - sc.k_lo) * D], src + int64_t(j) * a.ks[2], D * sizeof(float));
  }
  const float* k = sc.k.data() - int64_t(sc.k_lo) * D;  // k + j * D is key j
  const float* v = a.v + b * a.vs[0] + h * a.vs[1];

  // Qt[d, i] = scale * Q[r0 + i, d]; missing rows of the last panel are zeros.
  float* qt = sc.qt.data();
  if (rows == PANEL) {
    for (int d0 = 0; d0 < D; d0 += L) transpose16(q + d0, a.qs[2], qt + d0 * L, a.scale);
  } else {
    const float scale = a.scale;
    for (int i = 0; i < PANEL; ++i)
      for (int d = 0; d < D; ++d) qt[d * L + i] = i < rows ? q[i * a.qs[2] + d] * scale : 0.f;
  }

  // St[j - cs, :] for the keys that exist.
  float* st = sc.st.data();
  int j = j0;
  for (; j + 24 <= j1; j += 24) scores_tile<24, D>(k + int64_t(j) * D, qt, st + (j - cs) * L);
  for (; j + 8 <= j1; j += 8) scores_tile<8, D>(k + int64_t(j) * D, qt, st + (j - cs) * L);
  for (; j < j1; ++j) scores_tile<1, D>(k + int64_t(j) * D, qt, st + (j - cs) * L);

  // Softmax over keys, per query: key j is in query i's band when i <= j - cs <= i + 2w, so the
  // keys jj in [PANEL - 1, 2w] are in every band of the panel and need no band mask.
  const uint8_t* pad = a.pad ? a.pad + b * a.pad_b : nullptr;
  const float* rbias = a.rbias ? a.rbias + h * a.rbias_h : nullptr;
  vi iota;
  for (int t = 0; t < L; ++t) iota[t] = t;
  const vf neg_inf = splat(-INFINITY);
  const int first = j0 - cs, last = j1 - cs;  // local key rows [first, last)
  const int mid_lo = std::max(first, PANEL - 1), mid_hi = std::max(mid_lo, std::min(last, 2 * w + 1));
  vf m = neg_inf;
  auto edge = [&](int jj) {
    vf x = load(st + jj * L);
    if (rbias) x += load(rbias + (L + 2 * w - jj));  // bias[jj - i] for query i
    vi allowed = (iota <= jj) & (iota >= jj - 2 * w);
    x = allowed && !(pad && pad[cs + jj]) ? x : neg_inf;
    store(st + jj * L, x);
    m = m > x ? m : x;
  };
  for (int jj = first; jj < std::min(last, mid_lo); ++jj) edge(jj);
  if (rbias || pad) {
    for (int jj = mid_lo; jj < mid_hi; ++jj) {
      vf x = load(st + jj * L);
      if (rbias) x += load(rbias + (L + 2 * w - jj));
      if (pad && pad[cs + jj]) x = neg_inf;
      store(st + jj * L, x);
      m = m > x ? m : x;
    }
  } else {
    for (int jj = mid_lo; jj < mid_hi; ++jj) {
      vf x = load(st + jj * L);
      m = m > x ? m : x;
    }
  }
  for (int jj = mid_hi; jj < last; ++jj) edge(jj);
  vi has_key = m != neg_inf;
  m = has_key ? m : vf{};  // queries with no allowed key: every p below is exp(-inf) = 0
  vf sum = vf{};
  for (int jj = first; jj < last; ++jj) {
    vf p = vexp(load(st + jj * L) - m);
    store(st + jj * L, p);
    sum += p;
  }
  float inv[PANEL];
  for (int i = 0; i < PANEL; ++i) inv[i] = has_key[i] ? 1.f / sum[i] : 0.f;

  float* out = a.out + b * a.os[0] + h * a.os[1] + int64_t(r0) * a.os[2];
  const float* pt = st - int64_t(cs) * L;  // pt[j * L + i] = P[j, query r0 + i]
  constexpr int DV = D / L, RP = std::max(1, std::min(PANEL, 16 / DV));
  for (int i0 = 0; i0 < rows; i0 += RP) {
    const int lo = std::max(j0, cs + i0), hi = std::min(j1, cs + i0 + RP + 2 * w);  // keys of rows i0 + [0, RP)
    values_tile<RP, DV>(v, a.vs[2], pt, i0, lo, hi, out, a.os[2], inv, rows);
  }
}

template <int D>
void run_range(const Args& a, int64_t first, int64_t last) {
  Scratch sc(a);
  const int64_t panels = (a.N + PANEL - 1) / PANEL;
  for (int64_t item = first; item < last; ++item) {
    int64_t bh = item / panels;
    int r0 = int(item % panels) * PANEL;
    panel<D>(a, int(bh / a.H), int(bh % a.H), r0, sc);
  }
}

template <int D>
void run(const Args& a, int threads) {
  const int64_t items = int64_t(a.B) * a.H * ((a.N + PANEL - 1) / PANEL);
  threads = int(std::max<int64_t>(1, std::min<int64_t>(threads, items)));
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    run_range<D>(a, items * t / n, items * (t + 1) / n);
  }
}

}  // namespace

extern "C" {

// Returns 0 on success, 1 for an unsupported head size (the caller falls back to torch).
int seqattn_banded_forward(const float* q, const int64_t* qs, const float* k, const int64_t* ks,
                           const float* v, const int64_t* vs, float* out, const int64_t* os,
                           const uint8_t* pad, int64_t pad_b, const float* rbias, int64_t rbias_h,
                           int B, int H, int N, int D, int w, float scale, int threads) {
  Args a{};
  a.q = q; a.k = k; a.v = v; a.out = out; a.pad = pad; a.rbias = rbias;
  for (int t = 0; t < 3; ++t) { a.qs[t] = qs[t]; a.ks[t] = ks[t]; a.vs[t] = vs[t]; a.os[t] = os[t]; }
  a.pad_b = pad_b; a.rbias_h = rbias_h;
  a.B = B; a.H = H; a.N = N; a.D = D; a.w = w; a.scale = scale;
  switch (D) {
    case 16: run<16>(a, threads); return 0;
    case 32: run<32>(a, threads); return 0;
    case 64: run<64>(a, threads); return 0;
    case 128: run<128>(a, threads); return 0;
    default: return 1;
  }
}

}
