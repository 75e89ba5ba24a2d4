/* balance-t.h: a worker's mutable balancing state for one snapshot.
 * Functions in balance.h. */
#ifndef FLB_BALANCE_T_H
#define FLB_BALANCE_T_H

#include <stdint.h>

/* One worker's mutable balancing state for one snapshot: what the
 * algorithms remember between picks, kept per worker so that picking writes
 * no memory shared with other workers. */
struct flb_balance_state {
	uint32_t *rr;      /* per backend: next start position */
	int64_t *wrr;      /* per server (snapshot index): smooth-WRR current weight */
	uint32_t *loads;   /* scratch: max_bk_srv active counts */
	uint8_t *excl;     /* scratch: max_bk_srv exclusion flags */
	uint32_t *cand;    /* scratch: max_bk_srv candidates */
	uint64_t rng;      /* xorshift64* state, never 0 */
};

#endif /* FLB_BALANCE_T_H */
