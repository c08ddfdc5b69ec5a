/* vec.h — 16 floats as one value (GCC/Clang vector extension), so that
 * accumulators of hot loops stay in registers: one AVX-512 register, or two
 * AVX2 ones. Code using it keeps a plain loop for other compilers
 * (SOMA_HAVE_V16 tells which). */
#ifndef SOMA_VEC_H
#define SOMA_VEC_H
#include <stdint.h>
#if defined(__GNUC__)
#define SOMA_HAVE_V16 1
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define LOADV(p) (*(const v16u *)(p))
#define STOREV(p, v) (*(v16u *)(p) = (v))
typedef int32_t v16i __attribute__((vector_size(64))); /* comparisons of v16 give v16i masks (-1 or 0) */
typedef int32_t v16iu __attribute__((vector_size(64), aligned(4), may_alias));
#define STOREVI(p, v) (*(v16iu *)(p) = (v))
/* The even and the odd lanes of the 32 floats a, b (deinterleave). */
#if defined(__clang__)
#define EVENV(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDV(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#else
#define EVENV(a, b) __builtin_shuffle(a, b, (v16i){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define ODDV(a, b) __builtin_shuffle(a, b, (v16i){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})
#endif
#endif
#endif
