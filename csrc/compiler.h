/* compiler.h: portable helpers shared by every C file of the data plane.
 * Plain C11 with GCC/Clang extensions; never includes the interpreter's headers. */
#ifndef FLB_COMPILER_H
#define FLB_COMPILER_H

#define flb_likely(x)   __builtin_expect(!!(x), 1)
#define flb_unlikely(x) __builtin_expect(!!(x), 0)

#define FLB_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__x86_64__) || defined(__i386__)
#define FLB_X86 1
#endif
#if defined(__aarch64__)
#define FLB_ARM64 1
#endif

#endif /* FLB_COMPILER_H */
