/*
 * Halt while host threads are blocked in the kernel (accept, recv, pipe
 * read, nanosleep): each blocked call returns -ENODEV, every thread
 * returns, and the kernel's host threads are all joined.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/time_types.h>
#include <lkl/linux/errno.h>

#include "test_util.h"

static long listener, udp, pipe_rd;
static long results[4];

static void *in_accept(void *arg)
{
	results[0] = sys(LKL__NR_accept4, listener, 0, 0, 0);
	return NULL;
}

static void *in_recv(void *arg)
{
	char buf[8];

	results[1] = sys(LKL__NR_recvfrom, udp, (long)buf, sizeof(buf), 0, 0, 0);
	return NULL;
}

static void *in_read(void *arg)
{
	char buf[8];

	results[2] = sys(LKL__NR_read, pipe_rd, (long)buf, sizeof(buf));
	return NULL;
}

static void *in_sleep(void *arg)
{
	struct lkl__kernel_timespec ts = { .tv_sec = 3600 };

	results[3] = sys(LKL__NR_nanosleep, (long)&ts, 0);
	return NULL;
}

int main(void)
{
	struct lkl_sockaddr_in a = { .sin_family = LKL_AF_INET };
	void *(*fns[4])(void *) = { in_accept, in_recv, in_read, in_sleep };
	int before = test_host_threads(), fds[2], i;
	pthread_t t[4];

	test_boot(NULL);
	test_lo_up();
	a.sin_addr.s_addr = __builtin_bswap32(0x7f000001);
	a.sin_port = __builtin_bswap16(6000);
	listener = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_bind, listener, (long)&a, sizeof(a)));
	CHECK_OK(sys(LKL__NR_listen, listener, 1));
	a.sin_port = __builtin_bswap16(6001);
	udp = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK_OK(sys(LKL__NR_bind, udp, (long)&a, sizeof(a)));
	CHECK_OK(sys(LKL__NR_pipe2, (long)fds, 0));
	pipe_rd = fds[0];

	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, fns[i], NULL);
	usleep(200000);		/* let all four block */
	for (i = 0; i < 4; i++)
		CHECK(results[i] == 0, "call %d returned early: %ld", i, results[i]);

	CHECK(lkl_sys_halt() == 0, "halt");
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(results[i] == -LKL_ENODEV, "blocked call %d returned %ld", i,
		      results[i]);
	}
	PASS("blocked calls return ENODEV at halt");
	CHECK(test_host_threads() == before, "threads after halt %d, before %d",
	      test_host_threads(), before);
	PASS("halt joins every kernel thread");
	return 0;
}
