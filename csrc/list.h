/* list.h: a minimal intrusive doubly-linked list (circular, with a head node)
 * used by the engine for per-worker connection lists.  No allocation. */
#ifndef FLB_LIST_H
#define FLB_LIST_H

#include <stddef.h>

struct flb_list {
	struct flb_list *next, *prev;
};

/* The structure of type `type` that holds `member` at address `ptr`. */
#define flb_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Make l an empty list (or an unlinked node).  l: the head or node. */
static inline void flb_list_init(struct flb_list *l)
{
	l->next = l->prev = l;
}

/* Returns nonzero when the list headed by l is empty (or node l unlinked). */
static inline int flb_list_empty(const struct flb_list *l)
{
	return l->next == l;
}

/* Append node n (unlinked) at the tail of the list headed by head. */
static inline void flb_list_add_tail(struct flb_list *head, struct flb_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Unlink node n from its list (no-op on an unlinked node); n is left
 * unlinked, i.e. pointing at itself. */
static inline void flb_list_del(struct flb_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#endif /* FLB_LIST_H */
