/* ascii.h: ASCII case helpers shared by the HTTP code (router, rewriter).
 * Inline: the strings compared are short header names and hosts, where a
 * libc call costs more than the loop. */
#ifndef FLB_ASCII_H
#define FLB_ASCII_H

#include <stddef.h>

/* ASCII lower case of one byte.  c: any byte.  Returns it lowered. */
static inline unsigned char flb_ascii_lower(unsigned char c)
{
	return (unsigned char)((unsigned)(c - 'A') < 26u ? c + 32 : c);
}

/* Compare s[0..n), ignoring ASCII case, with lower-case l[0..n).
 * Returns 1 when equal, else 0. */
static inline int flb_ascii_ieq_lower(const char *s, const char *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (flb_ascii_lower((unsigned char)s[i]) != (unsigned char)l[i])
			return 0;
	return 1;
}

/* Compare a[0..n) and b[0..n) ignoring ASCII case.  Returns 1 when equal. */
static inline int flb_ascii_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (flb_ascii_lower((unsigned char)a[i]) != flb_ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Compare a[0..n) and b[0..n) exactly.  Returns 1 when equal. */
static inline int flb_bytes_eq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

#endif /* FLB_ASCII_H */
