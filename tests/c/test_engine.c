/* test_engine.c: unit tests of the engine's parts (timer heap, pools,
 * balancing, snapshot sealing and sharing) and an end-to-end relay through
 * real loopback sockets (echo backend thread, half-close, update, stop).
 * Uses pthreads (in glibc's libc since 2.34; older libcs need -pthread). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "balance.h"
#include "check.h"
#include "engine.h"
#include "pool.h"
#include "snapshot.h"
#include "timer.h"

/* ---- timers ---- */

static int fired[16], nfired;

/* Timer callback recording the order of expiry.  t: the timer; ctx: base. */
static void rec_cb(struct flb_timer *t, void *ctx)
{
	struct flb_timer *base = ctx;

	fired[nfired++] = (int)(t - base);
}

/* Arm, move, cancel and run timers; check the expiry order. */
static void test_timers(void)
{
	struct flb_timers ts;
	struct flb_timer t[10];
	uint64_t exp[10] = { 50, 10, 30, 90, 20, 70, 60, 40, 80, 100 };

	flb_timers_init(&ts);
	CHECK_EQ(flb_timers_next(&ts, 0), -1);
	for (int i = 0; i < 10; i++) {
		flb_timer_init(&t[i], rec_cb);
		CHECK_EQ(flb_timer_arm(&ts, &t[i], exp[i]), 0);
	}
	CHECK_EQ(flb_timers_next(&ts, 0), 10);
	flb_timer_cancel(&ts, &t[1]);             /* 10 gone */
	CHECK(!flb_timer_armed(&t[1]));
	flb_timer_arm(&ts, &t[3], 5);              /* 90 -> 5 */
	flb_timer_arm(&ts, &t[4], 95);             /* 20 -> 95 */
	CHECK_EQ(flb_timers_next(&ts, 0), 5);
	nfired = 0;
	CHECK_EQ(flb_timers_run(&ts, 60, t, 100), 5); /* 5, 30, 40, 50, 60 */
	CHECK_EQ(fired[0], 3);
	CHECK_EQ(fired[1], 2);
	CHECK_EQ(fired[2], 7);
	CHECK_EQ(fired[3], 0);
	CHECK_EQ(fired[4], 6);
	CHECK_EQ(flb_timers_run(&ts, 1000, t, 2), 2); /* budget */
	CHECK_EQ(flb_timers_run(&ts, 1000, t, 100), 2);
	CHECK_EQ(ts.n, 0);
	flb_timers_free(&ts);
}

/* ---- pools ---- */

/* Bounds of the pipe, buffer and object pools. */
static void test_pools(void)
{
	struct flb_pipe_pool pp;
	struct flb_buf_pool bp;
	struct flb_obj_pool op;
	struct flb_pipe *p1, *p2, *p3;
	struct flb_buf *b1, *b2;
	void *o1, *o2;

	flb_pipe_pool_init(&pp, 2, 1);
	p1 = flb_pipe_get(&pp);
	p2 = flb_pipe_get(&pp);
	p3 = flb_pipe_get(&pp);
	CHECK(p1 && p2 && p3 == NULL);
	CHECK(pp.size >= 4096);
	CHECK_EQ(write(p1->wr, "x", 1), 1);
	flb_pipe_discard(&pp, p1);
	flb_pipe_put(&pp, p2);
	CHECK_EQ(pp.nfree, 1);
	CHECK_EQ(pp.used, 0);
	p3 = flb_pipe_get(&pp);
	CHECK(p3 == p2);
	flb_pipe_put(&pp, p3);
	flb_pipe_pool_free(&pp);

	flb_buf_pool_init(&bp, 1, 0);
	b1 = flb_buf_get(&bp);
	b2 = flb_buf_get(&bp);
	CHECK(b1 && !b2);
	flb_buf_put(&bp, b1);
	CHECK_EQ(bp.nfree, 0);
	flb_buf_pool_free(&bp);

	flb_obj_pool_init(&op, 40, 2, 4);
	o1 = flb_obj_get(&op);
	o2 = flb_obj_get(&op);
	CHECK(o1 && o2 && !flb_obj_get(&op));
	memset(o1, 0xAB, 40);
	flb_obj_put(&op, o1);
	o1 = flb_obj_get(&op);
	CHECK(((unsigned char *)o1)[39] == 0); /* zeroed on reuse */
	flb_obj_put(&op, o1);
	flb_obj_put(&op, o2);
	flb_obj_pool_free(&op);
}

/* ---- balancing ---- */

/* Build a snapshot of one backend of n servers with weights w (no bind). */
static struct flb_snapshot *mk_snap(int algo, uint32_t n, const uint32_t *w, double lf,
                                    const struct flb_snapshot *prev, uint64_t gen)
{
	struct flb_snap_builder *b = flb_snap_builder_new();
	struct flb_snapshot *s = NULL;
	char err[128], addr[32];

	CHECK_EQ(flb_snap_add_backend(b, "bk", algo, 2, lf, 3, 1000), 0);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", 1000 + i);
		CHECK_EQ(flb_snap_add_server(b, 0, 100 + i, addr, "127.0.0.1", (uint16_t)(1000 + i),
		                             w ? w[i] : 1, 0, FLB_SRV_UP), (int)i);
	}
	CHECK_EQ(flb_snap_add_listener(b, "l", "127.0.0.1", 0, FLB_MODE_TCP, 0, 1000, 0, 0), 0);
	CHECK_EQ(flb_snap_seal(b, prev, 2, gen, &s, err, sizeof(err)), 0);
	return s;
}

/* Smooth WRR sequence, round robin, least_conn, random_two, maglev, ring,
 * exclusions and passive health. */
static void test_balance(void)
{
	uint32_t w[3] = { 5, 1, 1 }, cnt[3] = { 0 };
	struct flb_balance_state st;
	struct flb_snapshot *s = mk_snap(FLB_ALGO_WRR, 3, w, 0, NULL, 1);
	/* NGINX's smooth WRR with 5,1,1 gives a a b a c a a. */
	const int want[7] = { 0, 0, 1, 0, 2, 0, 0 };
	uint32_t tried[1];

	CHECK_EQ(flb_balance_state_init(&st, s, 7), 0);
	for (int i = 0; i < 7; i++)
		CHECK_EQ(flb_balance_pick(s, 0, &st, 0, 0, NULL, 0), want[i]);
	/* Excluded server 0: never picked. */
	tried[0] = 0;
	for (int i = 0; i < 10; i++)
		CHECK(flb_balance_pick(s, 0, &st, 0, 0, tried, 1) != 0);
	/* Drain: not picked. */
	s->srv[1].state = FLB_SRV_DRAIN;
	for (int i = 0; i < 10; i++)
		CHECK(flb_balance_pick(s, 0, &st, 0, 0, NULL, 0) != 1);
	s->srv[1].state = FLB_SRV_UP;
	/* Passive health: 3 failures take server 2 out until the timeout. */
	CHECK_EQ(flb_srv_failed(&s->srv[2], &s->bk[0], 100), 0);
	CHECK_EQ(flb_srv_failed(&s->srv[2], &s->bk[0], 100), 0);
	CHECK_EQ(flb_srv_failed(&s->srv[2], &s->bk[0], 100), 1);
	CHECK_EQ(flb_srv_failed(&s->srv[2], &s->bk[0], 100), 0); /* already out */
	CHECK(!flb_server_available(&s->srv[2], &s->bk[0], 500));
	CHECK(flb_server_available(&s->srv[2], &s->bk[0], 1100));
	flb_srv_succeeded(&s->srv[2]);
	CHECK(flb_server_available(&s->srv[2], &s->bk[0], 500));
	flb_balance_state_free(&st);
	flb_snapshot_release(s);

	/* Round robin and least_conn. */
	s = mk_snap(FLB_ALGO_RR, 3, NULL, 0, NULL, 1);
	flb_balance_state_init(&st, s, 1);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(flb_balance_pick(s, 0, &st, 0, 0, NULL, 0), i % 3);
	flb_balance_state_free(&st);
	flb_snapshot_release(s);

	s = mk_snap(FLB_ALGO_LEASTCONN, 3, NULL, 0, NULL, 1);
	flb_balance_state_init(&st, s, 1);
	CHECK(flb_srv_acquire(&s->srv[0]));
	CHECK(flb_srv_acquire(&s->srv[2]));
	for (int i = 0; i < 5; i++)
		CHECK_EQ(flb_balance_pick(s, 0, &st, 0, 0, NULL, 0), 1);
	flb_srv_put(&s->srv[0]);
	flb_srv_put(&s->srv[2]);
	flb_balance_state_free(&st);
	flb_snapshot_release(s);

	s = mk_snap(FLB_ALGO_RANDOM2, 3, NULL, 0, NULL, 1);
	flb_balance_state_init(&st, s, 99);
	for (int i = 0; i < 300; i++) {
		int32_t k = flb_balance_pick(s, 0, &st, 0, 0, NULL, 0);

		CHECK(k >= 0 && k < 3);
		if (k >= 0 && k < 3)
			cnt[k]++;
	}
	CHECK(cnt[0] > 50 && cnt[1] > 50 && cnt[2] > 50);
	flb_balance_state_free(&st);
	flb_snapshot_release(s);

	/* Maglev and ring: same key, same server; bounded loads spread. */
	for (int algo = FLB_ALGO_MAGLEV; algo <= FLB_ALGO_RING; algo++) {
		int32_t first, k;

		s = mk_snap(algo, 4, NULL, 0, NULL, 1);
		flb_balance_state_init(&st, s, 1);
		first = flb_balance_pick(s, 0, &st, 12345, 0, NULL, 0);
		CHECK(first >= 0);
		for (int i = 0; i < 5; i++)
			CHECK_EQ(flb_balance_pick(s, 0, &st, 12345, 0, NULL, 0), first);
		tried[0] = (uint32_t)first;
		k = flb_balance_pick(s, 0, &st, 12345, 0, tried, 1);
		CHECK(k >= 0 && k != first);
		flb_balance_state_free(&st);
		flb_snapshot_release(s);

		s = mk_snap(algo, 2, NULL, 1.0, NULL, 1);
		flb_balance_state_init(&st, s, 1);
		memset(cnt, 0, sizeof(cnt));
		for (int i = 0; i < 10; i++) {
			k = flb_balance_pick(s, 0, &st, 777, 0, NULL, 0);
			CHECK(k >= 0 && k < 2);
			if (k >= 0 && k < 2) {
				cnt[k]++;
				flb_srv_acquire(&s->srv[k]);
			}
		}
		CHECK_EQ(cnt[0], 5);
		CHECK_EQ(cnt[1], 5);
		for (int i = 0; i < 2; i++)
			while (cnt[i]--)
				flb_srv_put(&s->srv[i]);
		flb_balance_state_free(&st);
		flb_snapshot_release(s);
	}
}

/* Sealing against a previous snapshot shares servers by id and listeners
 * by name and address; builder errors are reported. */
static void test_snapshot(void)
{
	struct flb_snapshot *a = mk_snap(FLB_ALGO_RR, 2, NULL, 0, NULL, 1), *b;
	struct flb_snap_builder *bd;
	char err[128];

	CHECK_EQ(flb_snap_bind(a, 16, err, sizeof(err)), 0);
	CHECK(a->lsn[0].sock->bound == 1);
	CHECK(a->lsn[0].sock->slots[0].fd >= 0 && a->lsn[0].sock->slots[1].fd >= 0);
	b = mk_snap(FLB_ALGO_RR, 3, NULL, 0, a, 2);
	CHECK(b->srv[0].sh == a->srv[0].sh);
	CHECK(b->srv[1].sh == a->srv[1].sh);
	CHECK(b->lsn[0].sock == a->lsn[0].sock);
	CHECK_EQ(flb_snap_bind(b, 16, err, sizeof(err)), 0);
	flb_snapshot_release(a);
	CHECK_EQ(atomic_load(&b->srv[0].sh->refcnt), 1);
	flb_snapshot_release(b);

	bd = flb_snap_builder_new();
	CHECK(flb_snap_add_backend(bd, "x", 99, 0, 0, 0, 0) < 0);
	CHECK(strstr(flb_snap_builder_error(bd), "algorithm") != NULL);
	CHECK(flb_snap_seal(bd, NULL, 1, 1, &a, err, sizeof(err)) == -EINVAL);
	CHECK(a == NULL);
	bd = flb_snap_builder_new();
	CHECK_EQ(flb_snap_add_backend(bd, "x", FLB_ALGO_RR, 0, 0, 0, 0), 0);
	CHECK(flb_snap_add_server(bd, 0, 1, "bad", "not-an-ip", 80, 1, 0, 0) < 0);
	flb_snap_builder_free(bd);
	CHECK_EQ(flb_algo_from_name("maglev"), FLB_ALGO_MAGLEV);
	CHECK_EQ(flb_state_from_name("maint"), FLB_SRV_MAINT);
	CHECK_EQ(flb_mode_from_name("http"), FLB_MODE_HTTP);
	CHECK_EQ(flb_mode_from_name("udp"), -1);
}

/* ---- end to end ---- */

static int echo_lfd;

/* Echo backend: serves connections one at a time; on EOF from the client it
 * echoes what is left, then closes.  arg: unused.  Returns NULL. */
static void *echo_main(void *arg)
{
	char buf[65536];

	(void)arg;
	for (;;) {
		int c = accept(echo_lfd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			return NULL;
		while ((n = read(c, buf, sizeof(buf))) > 0)
			if (write(c, buf, (size_t)n) != n)
				break;
		close(c);
	}
}

/* A listening socket on 127.0.0.1, port out.  Returns the fd. */
static int listen_local(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	listen(fd, 64);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A builder of one listener "l" on port lport to one server on sport. */
static struct flb_snap_builder *mk_cfg(uint16_t lport, uint16_t sport, const char *lname)
{
	struct flb_snap_builder *b = flb_snap_builder_new();
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", sport);
	flb_snap_add_backend(b, "bk", FLB_ALGO_RR, 1, 0, 3, 1000);
	flb_snap_add_server(b, 0, 1, addr, "127.0.0.1", sport, 1, 0, FLB_SRV_UP);
	flb_snap_add_listener(b, lname, "127.0.0.1", lport, FLB_MODE_TCP, 0, 1000, 5000, 0);
	return b;
}

/* Connect to 127.0.0.1:port.  Returns the fd. */
static int dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = { .tv_sec = 5 };

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send msg, half-close, read the echo to EOF.  Returns 1 if it matched. */
static int roundtrip(uint16_t port, const char *msg)
{
	char buf[256];
	size_t got = 0, len = strlen(msg);
	ssize_t n;
	int fd = dial(port);

	if (fd < 0)
		return 0;
	if (write(fd, msg, len) != (ssize_t)len) {
		close(fd);
		return 0;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	close(fd);
	return got == len && memcmp(buf, msg, len) == 0;
}

/* The port a listener of the engine is bound to. */
static uint16_t eng_port(struct flb_engine *e, uint32_t i)
{
	struct flb_snapshot *s = flb_engine_snapshot(e);
	uint16_t port = ntohs(s->lsn[i].sock->bound_addr.in4.sin_port);

	flb_snapshot_release(s);
	return port;
}

/* Start an engine of 2 workers, relay, keep a connection across an update
 * that renames the listener (new socket) and drops the old one, stop. */
static void test_relay(void)
{
	struct flb_engine_params p;
	struct flb_engine *e;
	struct flb_snapshot *s;
	struct flb_lsn_stats ls;
	pthread_t th;
	uint16_t sport, lport, lport2;
	char err[160], buf[16];
	int keep;

	echo_lfd = listen_local(&sport);
	pthread_create(&th, NULL, echo_main, NULL);
	flb_engine_params_default(&p);
	p.workers = 2;
	e = flb_engine_new(&p, err, sizeof(err));
	CHECK(e != NULL);
	CHECK_EQ(flb_engine_start(e, mk_cfg(0, sport, "l"), err, sizeof(err)), 0);
	lport = eng_port(e, 0);
	CHECK(lport != 0);
	CHECK(roundtrip(lport, "hello"));
	CHECK(roundtrip(lport, "world!"));

	/* A connection open across the update (the echo backend serves one at
	 * a time, so it is the only one). */
	keep = dial(lport);
	CHECK(keep >= 0);
	CHECK_EQ(write(keep, "ab", 2), 2);
	CHECK_EQ(read(keep, buf, 2), 2);
	CHECK_EQ(flb_engine_update(e, mk_cfg(0, sport, "l2"), err, sizeof(err)), 0);
	lport2 = eng_port(e, 0);
	CHECK(lport2 != lport);
	CHECK_EQ(write(keep, "cd", 2), 2);
	CHECK_EQ(read(keep, buf, 2), 2);
	CHECK(memcmp(buf, "cd", 2) == 0);
	close(keep);
	usleep(50000);
	CHECK(roundtrip(lport2, "again"));
	CHECK(dial(lport) < 0); /* the old listener is closed */

	/* A bind error changes nothing. */
	CHECK(flb_engine_update(e, mk_cfg(sport, sport, "clash"), err, sizeof(err)) < 0);
	CHECK(strstr(err, "cannot listen") != NULL);
	CHECK(roundtrip(lport2, "still"));

	CHECK_EQ(flb_engine_stop(e, 100), 0);
	CHECK(dial(lport2) < 0);
	s = flb_engine_snapshot(e);
	flb_listener_stats(&s->lsn[0], &ls);
	CHECK_EQ(ls.conn_total, 2);
	CHECK_EQ(ls.bytes_in, 10);
	flb_snapshot_release(s);
	flb_engine_free(e);
	shutdown(echo_lfd, SHUT_RDWR);
	close(echo_lfd);
	pthread_join(th, NULL);
}

/* main: run every test.  Returns the exit status. */
int main(void)
{
	test_timers();
	test_pools();
	test_balance();
	test_snapshot();
	test_relay();
	return CHECK_REPORT();
}
