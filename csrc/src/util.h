/* Compiler helpers and small branch-free integer functions shared by the codec's inline headers.
 * Everything here is static inline: the core keeps no state outside the call's own block. */
#ifndef LINF_UTIL_H
#define LINF_UTIL_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FORCE_INLINE static inline __attribute__((always_inline))
#else
#define FORCE_INLINE static inline
#endif

/* Out-of-line on purpose: each such function gets its own register allocation (see codec.c). */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE static __attribute__((noinline))
#else
#define NOINLINE static
#endif


/* GCC/Clang vector extensions: portable SIMD (SSE2 on x86-64, NEON on arm64) for the blend's
 * lanes, where the auto-vectoriser is not reliable once code_sample is inlined into a row loop.
 * Other compilers take the scalar code, which computes the same values. */
#ifndef LINF_VECTOR /* -DLINF_VECTOR=0 builds the scalar code (to test it) */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9)
#define LINF_VECTOR 1
#else
#define LINF_VECTOR 0
#endif
#endif
#if LINF_VECTOR
typedef int32_t v4i32 __attribute__((vector_size(16)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));
typedef float v4f32 __attribute__((vector_size(16)));
typedef double v4f64 __attribute__((vector_size(32))); /* two registers without AVX: never passed by value */
#endif

FORCE_INLINE int32_t iabs(int32_t v) { return v < 0 ? -v : v; }
FORCE_INLINE int32_t clamp32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Median of three as c clamped to [min(a, b), max(a, b)]: selects only, no data-dependent branch
 * (the order of a and b is a coin toss in textured areas). */
FORCE_INLINE int32_t median3(int32_t a, int32_t b, int32_t c)
{
    const int32_t lo = a < b ? a : b, hi = a < b ? b : a;
    const int32_t m = c < hi ? c : hi;
    return m > lo ? m : lo;
}

/* floor(log2(v)) for v >= 1: one instruction (bsr / clz) where the compiler has a builtin. */
FORCE_INLINE int log2_floor(uint32_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return 31 - __builtin_clz(v);
#else
    int n = -1;
    while (v) { n++; v >>= 1; }
    return n;
#endif
}

FORCE_INLINE uint32_t saturate16(int32_t v) { return (uint32_t)(v > 0xFFFF ? 0xFFFF : v); }

#endif
