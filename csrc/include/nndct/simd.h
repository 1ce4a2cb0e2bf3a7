// Compiler attributes for the hot loops: function multi-versioning (AVX-512 and AVX2 clones picked
// at load time on x86-64, so the wheel still runs on any x86-64 CPU) and forced inlining of the
// loop bodies into those clones.
#pragma once

// The x86-64-v4 (AVX-512) clone has FMA: the build passes -ffp-contract=off so that no a*b+c is
// fused behind the source's back (a fused rounding would change calibration results).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define NNDCT_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#elif defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define NNDCT_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NNDCT_TARGET_CLONES
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NNDCT_ALWAYS_INLINE inline __attribute__((always_inline))
#define NNDCT_RESTRICT __restrict__
#else
#define NNDCT_ALWAYS_INLINE inline
#define NNDCT_RESTRICT
#endif

// Expands BODY once per rounding method with a constexpr `M` naming it, so that the per-element
// code is specialised (and vectorized) per method while the dispatch stays outside the loop.
#define NNDCT_SWITCH_METHOD(method, BODY)                                   \
  switch (method) {                                                       \
    case ::nndct::Method::kDpuRound: {                                    \
      constexpr ::nndct::Method M = ::nndct::Method::kDpuRound;           \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kStdRound: {                                    \
      constexpr ::nndct::Method M = ::nndct::Method::kStdRound;           \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kFloor: {                                       \
      constexpr ::nndct::Method M = ::nndct::Method::kFloor;              \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kOldRnn: {                                      \
      constexpr ::nndct::Method M = ::nndct::Method::kOldRnn;             \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kHalfDown: {                                    \
      constexpr ::nndct::Method M = ::nndct::Method::kHalfDown;           \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kCeil: {                                        \
      constexpr ::nndct::Method M = ::nndct::Method::kCeil;               \
      BODY;                                                               \
    } break;                                                              \
    case ::nndct::Method::kHalfEven: {                                    \
      constexpr ::nndct::Method M = ::nndct::Method::kHalfEven;           \
      BODY;                                                               \
    } break;                                                              \
  }
