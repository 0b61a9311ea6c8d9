// Fused optimizer steps for XLA's CPU backend, called through jax.ffi (see jopt/_src/fused.py).
//
// One custom call updates every leaf of one dtype: it reads each parameter, its gradient and its
// optimizer-state buffers once and writes the parameter and the buffers once (in place: the
// Python side aliases each output to its input). The work is cut into chunks that XLA's
// intra-op thread pool and the calling thread share; the loops are plain C++ that the compiler
// vectorizes (-O3, -fno-math-errno so that sqrt vectorizes, -ffp-contract=off so that every
// product and sum is rounded on its own).
//
// Arguments: a 1-D buffer of the step's scalars (in the leaves' dtype, computed in the XLA
// program exactly as the plain path computes them), then per leaf: param, gradient, then the
// `buffers` state buffers. Results per leaf: param, then the state buffers. Each kernel's
// elementwise formula is written in the plain path's order of operations. XLA's CPU code for
// that path contracts some products and sums into fused multiply-adds, differently depending on
// what it fuses with (the gradient, the loss): the kernels contract none, so that their result
// is fixed, and the tests check it bit for bit against a NumPy evaluation of the same formula and
// within a few ulps of each leaf's scale per step against XLA's.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kChunk = 1 << 16;  // elements per task: 256 KiB of each float32 stream
constexpr int kMaxBuffers = 3;

// One leaf: its size and buffers. The param and the state buffers are updated in place (each
// result aliases its argument: XLA gives the kernel one buffer for both).
struct Leaf {
  int64_t size;
  void* param;
  const void* grad;
  void* state[kMaxBuffers];
};

struct Chunk {
  int64_t leaf, begin, end;
};

template <typename T>
struct View {
  T* p;
  const T* g;
  T* s[kMaxBuffers];
};

template <typename T>
View<T> view(const Leaf& leaf) {
  View<T> v{static_cast<T*>(leaf.param), static_cast<const T*>(leaf.grad), {}};
  for (int k = 0; k < kMaxBuffers; ++k) v.s[k] = static_cast<T*>(leaf.state[k]);
  return v;
}

// Runs `body(chunk)` over all chunks, on the calling thread and on XLA's intra-op pool. A task
// claims chunks until none are left; the caller waits only for chunks already claimed, so the
// call finishes even if no pool thread ever runs (a task that starts late finds nothing to do;
// it holds the shared state, never the caller's stack).
template <typename Body>
void parallel_chunks(ffi::ThreadPool& pool, const std::vector<Chunk>& chunks, Body body) {
  struct Shared {
    std::vector<Chunk> chunks;
    Body body;
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
    Shared(const std::vector<Chunk>& c, Body b) : chunks(c), body(b) {}
    void work() {
      for (size_t i; (i = next.fetch_add(1)) < chunks.size();) {
        body(chunks[i]);
        done.fetch_add(1, std::memory_order_release);
      }
    }
  };
  const int64_t threads = pool.num_threads();
  if (chunks.size() < 2 || threads < 1) {
    for (const Chunk& c : chunks) body(c);
    return;
  }
  auto shared = std::make_shared<Shared>(chunks, body);
  const int64_t helpers = std::min<int64_t>(threads, static_cast<int64_t>(chunks.size()) - 1);
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([shared] { shared->work(); });
  shared->work();
  while (shared->done.load(std::memory_order_acquire) < shared->chunks.size()) {
    std::this_thread::yield();
  }
}

// p + (-lr) u. Every product and sum is rounded to T (no fused multiply-adds): the result is the
// formula evaluated operation by operation, which a NumPy reference reproduces bit for bit.
template <typename T>
inline T step(T p, T neg_lr, T u) {
  return p + neg_lr * u;
}

// The elementwise kernels. `c` holds the scalars, `v` the leaf, [b, e) the range.

// SGD with momentum: g' = g + wd p (coupled L2); m = w g' + mu m; d = m (nesterov:
// w g' + mu m); p += -lr d. Scalars: -lr, wd, mu, w (1 - dampening, or 1 - mu: the EMA form).
template <typename T, bool Decay, bool Nesterov>
void momentum(const T* c, const View<T>& v, int64_t b, int64_t e) {
  const T neg_lr = c[0], wd = c[1], mu = c[2], w = c[3];
  T* __restrict__ p = v.p;
  const T* __restrict__ grad = v.g;
  T* __restrict__ trace = v.s[0];
  for (int64_t i = b; i < e; ++i) {
    T g = grad[i];
    if constexpr (Decay) g = g + wd * p[i];
    const T m = w * g + mu * trace[i];
    trace[i] = m;
    p[i] = step(p[i], neg_lr, Nesterov ? w * g + mu * m : m);
  }
}

// max(a, b), NaN if either is NaN (as jnp.maximum).
template <typename T>
inline T maximum(T a, T b) {
  return (a > b || a != a) ? a : b;
}

// Adam: m = (1-b1) g + b1 m; v = (1-b2) g^2 + b2 v; u = m_hat / (sqrt(v_hat + eps_root) + eps)
// with x_hat = x * (1 / c) (XLA turns a division by a scalar into this product, and the plain
// path is compiled by XLA; 1 / c is 1 without a correction, and x * 1 is x); AdamW adds wd p
// to u; p += -lr u. AMSGrad keeps v_max = max(v_max, v) and uses v_max * (1 / c2) for v_hat
// (or, with the maximum taken after the correction, v_max = max(v_max, v * (1 / c2)) = v_hat).
// NAdam's m_hat is (1-b1) (g * (1 / c1)) + b1 (m * (1 / c1')), c1' = 1 - b1^(t+1).
// torch's Adam couples its L2 instead: g' = g + wd p before the moments.
// Scalars: b1, 1-b1, b2, 1-b2, 1/c1, 1/c2, eps_root, eps, wd, -lr, 1/c1'.
template <typename T, bool Decay, bool Amsgrad, bool MaxCorrected, bool Nesterov,
          bool Coupled = false>
void adam(const T* c, const View<T>& v, int64_t b, int64_t e) {
  const T b1 = c[0], cb1 = c[1], b2 = c[2], cb2 = c[3], inv_c1 = c[4], inv_c2 = c[5];
  const T eps_root = c[6], eps = c[7], wd = c[8], neg_lr = c[9], inv_ahead = c[10];
  T* __restrict__ p = v.p;
  const T* __restrict__ grad = v.g;
  T* __restrict__ mu = v.s[0];
  T* __restrict__ nu = v.s[1];
  T* __restrict__ nu_max = v.s[2];
  for (int64_t i = b; i < e; ++i) {
    T g = grad[i];
    if constexpr (Coupled) g = g + wd * p[i];
    const T m = cb1 * g + b1 * mu[i];
    const T s = cb2 * (g * g) + b2 * nu[i];
    mu[i] = m;
    nu[i] = s;
    T v_hat = s * inv_c2;
    if constexpr (Amsgrad) {
      const T top = MaxCorrected ? maximum(nu_max[i], v_hat) : maximum(nu_max[i], s);
      nu_max[i] = top;
      v_hat = MaxCorrected ? top : top * inv_c2;
    }
    const T m_hat = Nesterov ? cb1 * (g * inv_c1) + b1 * (m * inv_ahead) : m * inv_c1;
    T u = m_hat / (std::sqrt(v_hat + eps_root) + eps);
    if constexpr (Decay) u = u + wd * p[i];
    p[i] = step(p[i], neg_lr, u);
  }
}

// The scale 1/sqrt(a + eps) (eps inside the root) or 1/(sqrt(a) + eps).
template <typename T, bool EpsInSqrt>
inline T inverse_root(T a, T eps) {
  if constexpr (EpsInSqrt) {
    return T(1) / std::sqrt(a + eps);
  } else {
    return T(1) / (std::sqrt(a) + eps);
  }
}

// RMSProp: g' = g + wd p; n = (1-d) g'^2 + d n; u = inverse_root(s, eps) g' with s = n, or,
// centered (Graves 2013), m = (1-d) g' + d m and s = n - m^2; p += -lr u. With momentum (the
// learning rate inside the buffer, as optax): v = -lr u + mu v; p += v (nesterov: -lr u + mu v).
// Scalars: wd, d, 1-d, eps, -lr, mu. Buffers: n, [m], [v].
template <typename T, bool Decay, bool EpsInSqrt, bool Centered, bool Momentum, bool Nesterov>
void rmsprop(const T* c, const View<T>& v, int64_t b, int64_t e) {
  const T wd = c[0], d = c[1], cd = c[2], eps = c[3], neg_lr = c[4], momentum = c[5];
  T* __restrict__ p = v.p;
  const T* __restrict__ grad = v.g;
  T* __restrict__ nu = v.s[0];
  T* __restrict__ mu = v.s[1];
  T* __restrict__ trace = v.s[Centered ? 2 : 1];
  for (int64_t i = b; i < e; ++i) {
    T g = grad[i];
    if constexpr (Decay) g = g + wd * p[i];
    const T n = cd * (g * g) + d * nu[i];
    nu[i] = n;
    T s = n;
    if constexpr (Centered) {
      const T m = cd * g + d * mu[i];
      mu[i] = m;
      s = n - m * m;
    }
    const T u = inverse_root<T, EpsInSqrt>(s, eps) * g;
    if constexpr (Momentum) {
      const T velocity = neg_lr * u + momentum * trace[i];
      trace[i] = velocity;
      p[i] = p[i] + (Nesterov ? neg_lr * u + momentum * velocity : velocity);
    } else {
      p[i] = step(p[i], neg_lr, u);
    }
  }
}

// Adagrad: a = g^2 + a; p += -lr * (inverse_root(a, eps) g), the root's inverse taken as 0
// where a + eps is 0 (eps inside the root). Scalars: eps, -lr.
template <typename T, bool EpsInSqrt>
void adagrad(const T* c, const View<T>& v, int64_t b, int64_t e) {
  const T eps = c[0], neg_lr = c[1];
  T* __restrict__ p = v.p;
  const T* __restrict__ grad = v.g;
  T* __restrict__ sum = v.s[0];
  for (int64_t i = b; i < e; ++i) {
    const T g = grad[i];
    const T a = g * g + sum[i];
    sum[i] = a;
    T r = inverse_root<T, EpsInSqrt>(a, eps);
    if constexpr (EpsInSqrt) r = a + eps > T(0) ? r : T(0);
    p[i] = step(p[i], neg_lr, r * g);
  }
}

// sign(x), with sign(0) = 0 and sign(NaN) = NaN, as jnp.sign.
template <typename T>
inline T sign(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);
}

// Lion: u = sign((1-b1) g + b1 m) + wd p; m = (1-b2) g + b2 m; p += -lr u.
// Scalars: b1, 1-b1, b2, 1-b2, wd, -lr.
template <typename T>
void lion(const T* c, const View<T>& v, int64_t b, int64_t e) {
  const T b1 = c[0], cb1 = c[1], b2 = c[2], cb2 = c[3], wd = c[4], neg_lr = c[5];
  T* __restrict__ p = v.p;
  const T* __restrict__ grad = v.g;
  T* __restrict__ mu = v.s[0];
  for (int64_t i = b; i < e; ++i) {
    const T g = grad[i], m = mu[i];
    const T u = sign(cb1 * g + b1 * m) + wd * p[i];
    mu[i] = cb2 * g + b2 * m;
    p[i] = step(p[i], neg_lr, u);
  }
}

// The result's buffer, holding the argument's values. XLA hands an aliased argument and result
// one buffer; where it did not, the values are copied over first.
void* in_place(const ffi::AnyBuffer& arg, ffi::AnyBuffer& result) {
  if (arg.untyped_data() != result.untyped_data()) {
    std::memcpy(result.untyped_data(), arg.untyped_data(), arg.size_bytes());
  }
  return result.untyped_data();
}

template <typename T>
using Kernel = void (*)(const T*, const View<T>&, int64_t, int64_t);

// Reads the call's leaves and runs `kernel` on all of them.
template <typename T>
ffi::Error run(ffi::ThreadPool pool, ffi::AnyBuffer scalars, ffi::RemainingArgs args,
               ffi::RemainingRets rets, int64_t buffers, Kernel<T> kernel) {
  if (buffers < 0 || buffers > kMaxBuffers) {
    return ffi::Error::InvalidArgument("jopt fused step: bad number of state buffers");
  }
  const size_t leaves = rets.size() / (1 + buffers);
  if (rets.size() != leaves * (1 + buffers) || args.size() != leaves * (2 + buffers)) {
    return ffi::Error::InvalidArgument("jopt fused step: arguments and results do not pair up");
  }
  std::vector<Leaf> all(leaves);
  std::vector<Chunk> chunks;
  for (size_t l = 0; l < leaves; ++l) {
    Leaf& leaf = all[l];
    auto arg = [&](size_t k) { return args.get<ffi::AnyBuffer>(l * (2 + buffers) + k); };
    auto ret = [&](size_t k) { return rets.get<ffi::AnyBuffer>(l * (1 + buffers) + k); };
    auto p = arg(0), g = arg(1);
    auto p_out = ret(0);
    if (!p.has_value() || !g.has_value() || !p_out.has_value()) {
      return ffi::Error::InvalidArgument("jopt fused step: a leaf is not a buffer");
    }
    leaf.size = static_cast<int64_t>(p->element_count());
    if (static_cast<int64_t>(g->element_count()) != leaf.size) {
      return ffi::Error::InvalidArgument("jopt fused step: a gradient's size is not its param's");
    }
    if (p->element_type() != scalars.element_type() || g->element_type() != p->element_type()) {
      return ffi::Error::InvalidArgument("jopt fused step: leaves and scalars differ in dtype");
    }
    leaf.param = in_place(*p, **p_out);
    leaf.grad = g->untyped_data();
    for (int64_t k = 0; k < buffers; ++k) {
      auto s = arg(2 + k);
      auto s_out = ret(1 + k);
      if (!s.has_value() || !s_out.has_value() ||
          static_cast<int64_t>(s->element_count()) != leaf.size ||
          s->element_type() != p->element_type()) {
        return ffi::Error::InvalidArgument(
            "jopt fused step: a state buffer differs from its param in size or dtype");
      }
      leaf.state[k] = in_place(*s, **s_out);
    }
    for (int64_t b = 0; b < leaf.size; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(l), b, std::min(leaf.size, b + kChunk)});
    }
  }
  const T* c = static_cast<const T*>(scalars.untyped_data());
  parallel_chunks(pool, chunks, [&all, c, kernel](const Chunk& ch) {
    kernel(c, view<T>(all[ch.leaf]), ch.begin, ch.end);
  });
  return ffi::Error::Success();
}

// Picks the kernel for the leaves' dtype (float32 or float64) and the call's options.
template <template <typename> class Select>
ffi::Error dispatch(ffi::ThreadPool pool, ffi::AnyBuffer scalars, ffi::RemainingArgs args,
                    ffi::RemainingRets rets, int64_t buffers, int64_t options) {
  switch (scalars.element_type()) {
    case ffi::DataType::F32:
      return run<float>(pool, scalars, args, rets, buffers, Select<float>::kernel(options));
    case ffi::DataType::F64:
      return run<double>(pool, scalars, args, rets, buffers, Select<double>::kernel(options));
    default:
      return ffi::Error::InvalidArgument("jopt fused step: leaves must be float32 or float64");
  }
}

// Options are bit flags, in the order each kernel's template lists them.
constexpr bool bit(int64_t options, int k) { return (options >> k) & 1; }

template <typename T>
struct SelectMomentum {
  static Kernel<T> kernel(int64_t o) {
    static constexpr Kernel<T> table[] = {momentum<T, false, false>, momentum<T, true, false>,
                                          momentum<T, false, true>, momentum<T, true, true>};
    return table[o & 3];
  }
};

template <typename T>
struct SelectAdam {
  // Bits: decay, amsgrad, max after the correction (with amsgrad), nesterov (without amsgrad),
  // coupled L2 (with neither decay nor nesterov).
  static Kernel<T> kernel(int64_t o) {
    if (bit(o, 4)) {
      static constexpr Kernel<T> coupled[] = {
          adam<T, false, false, false, false, true>, adam<T, false, true, false, false, true>,
          adam<T, false, false, false, false, true>, adam<T, false, true, true, false, true>};
      return coupled[(o >> 1) & 3];
    }
    if (bit(o, 3)) {
      return bit(o, 0) ? adam<T, true, false, false, true> : adam<T, false, false, false, true>;
    }
    static constexpr Kernel<T> table[] = {
        adam<T, false, false, false, false>, adam<T, true, false, false, false>,
        adam<T, false, true, false, false>,  adam<T, true, true, false, false>,
        adam<T, false, false, false, false>, adam<T, true, false, false, false>,
        adam<T, false, true, true, false>,   adam<T, true, true, true, false>};
    return table[o & 7];
  }
};

// RMSProp's variants by decay, eps inside the root and centering (bits 0-2), for one momentum.
template <typename T, bool Momentum, bool Nesterov>
Kernel<T> rmsprop_variant(int64_t o) {
  static constexpr Kernel<T> table[] = {
      rmsprop<T, false, false, false, Momentum, Nesterov>,
      rmsprop<T, true, false, false, Momentum, Nesterov>,
      rmsprop<T, false, true, false, Momentum, Nesterov>,
      rmsprop<T, true, true, false, Momentum, Nesterov>,
      rmsprop<T, false, false, true, Momentum, Nesterov>,
      rmsprop<T, true, false, true, Momentum, Nesterov>,
      rmsprop<T, false, true, true, Momentum, Nesterov>,
      rmsprop<T, true, true, true, Momentum, Nesterov>};
  return table[o & 7];
}

template <typename T>
struct SelectRmsprop {
  // Bits: decay, eps inside the root, centered, momentum, nesterov (with momentum).
  static Kernel<T> kernel(int64_t o) {
    if (!bit(o, 3)) return rmsprop_variant<T, false, false>(o);
    return bit(o, 4) ? rmsprop_variant<T, true, true>(o) : rmsprop_variant<T, true, false>(o);
  }
};

template <typename T>
struct SelectAdagrad {
  static Kernel<T> kernel(int64_t o) {
    return bit(o, 0) ? adagrad<T, true> : adagrad<T, false>;
  }
};

template <typename T>
struct SelectLion {
  static Kernel<T> kernel(int64_t) { return lion<T>; }
};

template <template <typename> class Select>
ffi::Error fused_step(ffi::ThreadPool pool, ffi::AnyBuffer scalars, ffi::RemainingArgs args,
                   ffi::RemainingRets rets, int64_t buffers, int64_t options) {
  return dispatch<Select>(pool, scalars, args, rets, buffers, options);
}

}  // namespace

// The library is built with hidden symbols: only the handlers are exported.
#define JOPT_FUSED_HANDLER(symbol, select)                              \
  extern "C" __attribute__((visibility("default"))) XLA_FFI_Error*      \
  symbol(XLA_FFI_CallFrame* call_frame);                                \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(symbol, fused_step<select>,             \
                                ffi::Ffi::Bind()                        \
                                    .Ctx<ffi::ThreadPool>()             \
                                    .Arg<ffi::AnyBuffer>()              \
                                    .RemainingArgs()                    \
                                    .RemainingRets()                    \
                                    .Attr<int64_t>("buffers")           \
                                    .Attr<int64_t>("options"));

JOPT_FUSED_HANDLER(JoptFusedMomentum, SelectMomentum)
JOPT_FUSED_HANDLER(JoptFusedAdam, SelectAdam)
JOPT_FUSED_HANDLER(JoptFusedRmsprop, SelectRmsprop)
JOPT_FUSED_HANDLER(JoptFusedAdagrad, SelectAdagrad)
JOPT_FUSED_HANDLER(JoptFusedLion, SelectLion)
