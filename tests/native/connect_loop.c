/*
 * Many short TCP connections on loopback from one thread, while another
 * thread sleeps in epoll_pwait for ever: connect, accept, send, recv,
 * close, 20 000 times.  In direct mode this once lost a wakeup: tiny
 * RCU's tick asked the borrowed task to reschedule, and a cond_resched()
 * in close() then ran the scheduler in the idle task's place.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/eventpoll.h>

#include "test_util.h"

#define CONNECTIONS 20000

static void *sleeper(void *arg)
{
	struct lkl_epoll_event ev;
	long ep = CHECK_OK(sys(LKL__NR_epoll_create1, 0));

	/* Returns only at halt. */
	sys(LKL__NR_epoll_pwait, ep, (long)&ev, 1, -1, 0, 8);
	return NULL;
}

int main(void)
{
	struct lkl_sockaddr_in sa = { .sin_family = LKL_AF_INET };
	int len = sizeof(sa), i;
	uint64_t t0;
	pthread_t t;
	long srv;

	test_boot(NULL);
	test_lo_up();
	sa.sin_addr.s_addr = __builtin_bswap32(0x7f000001);
	srv = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_bind, srv, (long)&sa, sizeof(sa)));
	CHECK_OK(sys(LKL__NR_listen, srv, 16));
	CHECK_OK(sys(LKL__NR_getsockname, srv, (long)&sa, (long)&len));
	pthread_create(&t, NULL, sleeper, NULL);

	t0 = test_now_ns();
	for (i = 0; i < CONNECTIONS; i++) {
		long c = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
		char b = 'x';
		long a;

		CHECK_OK(sys(LKL__NR_connect, c, (long)&sa, sizeof(sa)));
		a = CHECK_OK(sys(LKL__NR_accept4, srv, 0, 0, 0));
		CHECK(sys(LKL__NR_sendto, c, (long)&b, 1, 0, 0, 0) == 1, "send");
		CHECK(sys(LKL__NR_recvfrom, a, (long)&b, 1, 0, 0, 0) == 1, "recv");
		sys(LKL__NR_close, a);
		sys(LKL__NR_close, c);
	}
	printf("ok %d connections in %.0f ms\n", CONNECTIONS, (test_now_ns() - t0) / 1e6);
	CHECK(lkl_sys_halt() == 0, "halt");
	pthread_join(t, NULL);
	PASS("halt");
	return 0;
}
