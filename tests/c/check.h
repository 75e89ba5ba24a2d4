/* check.h: a minimal assertion kit for the C unit tests in tests/c/.
 * Each test program includes it once, calls CHECK()/CHECK_EQ() inside test
 * functions, and ends main() with CHECK_REPORT(), which prints
 * "N passed, N failed" and returns the exit status. */
#ifndef FLB_CHECK_H
#define FLB_CHECK_H

#include <stdio.h>
#include <string.h>

static unsigned long check_passed, check_failed;

#define CHECK(cond) do { \
	if (cond) { check_passed++; } \
	else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_EQ(a, b) do { \
	long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
	if (check_a_ == check_b_) { check_passed++; } \
	else { check_failed++; fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", \
	                               __FILE__, __LINE__, #a, check_a_, #b, check_b_); } \
} while (0)

#define CHECK_MEM(p, n, s) do { \
	size_t check_n_ = (n); const char *check_s_ = (s); \
	if (check_n_ == strlen(check_s_) && memcmp((p), check_s_, check_n_) == 0) { check_passed++; } \
	else { check_failed++; fprintf(stderr, "%s:%d: CHECK_MEM failed: %.*s != %s\n", \
	                               __FILE__, __LINE__, (int)check_n_, (const char *)(p), check_s_); } \
} while (0)

#define CHECK_REPORT() ( \
	printf("%lu passed, %lu failed\n", check_passed, check_failed), \
	check_failed ? 1 : 0)

#endif /* FLB_CHECK_H */
