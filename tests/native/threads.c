/*
 * Many host threads in the kernel at once.
 *  - 8 threads: two block in accept() and recv() while six others make
 *    syscalls; then the blocked ones are released.  No deadlock.
 *  - 64 short-lived threads each make syscalls and exit: their shadow
 *    kernel threads go away with them (host thread count returns).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/errno.h>

#include "test_util.h"

static struct lkl_sockaddr_in addr(int port)
{
	struct lkl_sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = LKL_AF_INET;
	a.sin_port = __builtin_bswap16(port);
	a.sin_addr.s_addr = __builtin_bswap32(0x7f000001);
	return a;
}

static long listener, udp_sock;
static int accepted, received;

static void *blocked_in_accept(void *arg)
{
	long c = CHECK_OK(sys(LKL__NR_accept4, listener, 0, 0, 0));

	__atomic_store_n(&accepted, 1, __ATOMIC_SEQ_CST);
	sys(LKL__NR_close, c);
	return NULL;
}

static void *blocked_in_recv(void *arg)
{
	char buf[16];
	long n = sys(LKL__NR_recvfrom, udp_sock, (long)buf, sizeof(buf), 0, 0, 0);

	CHECK(n == 5, "recv after release: %ld", n);
	__atomic_store_n(&received, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void *busy(void *arg)
{
	long i, id = (long)arg;
	char path[64];

	snprintf(path, sizeof(path), "/tmp/busy%ld", id);
	for (i = 0; i < 2000; i++) {
		long fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path,
				       LKL_O_CREAT | LKL_O_RDWR, 0600));
		CHECK(sys(LKL__NR_write, fd, (long)&i, sizeof(i)) == sizeof(i), "write");
		CHECK(sys(LKL__NR_getpid) == 1, "getpid");
		sys(LKL__NR_close, fd);
	}
	return NULL;
}

static void eight_threads(void)
{
	struct lkl_sockaddr_in la = addr(5000), ua = addr(5001);
	pthread_t t[8];
	long i, c, s;

	listener = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_bind, listener, (long)&la, sizeof(la)));
	CHECK_OK(sys(LKL__NR_listen, listener, 4));
	udp_sock = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK_OK(sys(LKL__NR_bind, udp_sock, (long)&ua, sizeof(ua)));

	pthread_create(&t[0], NULL, blocked_in_accept, NULL);
	pthread_create(&t[1], NULL, blocked_in_recv, NULL);
	for (i = 2; i < 8; i++)
		pthread_create(&t[i], NULL, busy, (void *)i);
	for (i = 2; i < 8; i++)
		pthread_join(t[i], NULL);
	CHECK(!accepted && !received, "the blocked threads stayed blocked");

	/* Release them. */
	c = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_STREAM, 0));
	CHECK_OK(sys(LKL__NR_connect, c, (long)&la, sizeof(la)));
	s = CHECK_OK(sys(LKL__NR_socket, LKL_AF_INET, LKL_SOCK_DGRAM, 0));
	CHECK(sys(LKL__NR_sendto, s, (long)"hello", 5, 0, (long)&ua, sizeof(ua)) == 5,
	      "sendto");
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	CHECK(accepted && received, "blocked threads completed");
	sys(LKL__NR_close, c);
	sys(LKL__NR_close, s);
	sys(LKL__NR_close, listener);
	sys(LKL__NR_close, udp_sock);
	PASS("8 threads, 2 blocked in accept/recv, 6 busy");
}

static void *short_lived(void *arg)
{
	int i;

	for (i = 0; i < 10; i++)
		CHECK(sys(LKL__NR_getpid) == 1, "getpid");
	return NULL;
}

static void short_lived_threads(void)
{
	int before = test_host_threads(), after = 0;
	uint64_t deadline;
	pthread_t t[64];
	int i;

	for (i = 0; i < 64; i++)
		CHECK(pthread_create(&t[i], NULL, short_lived, NULL) == 0, "create");
	for (i = 0; i < 64; i++)
		pthread_join(t[i], NULL);
	/* Shadow threads are reaped once the kernel frees their tasks (RCU). */
	deadline = test_now_ns() + 5000000000ULL;
	while (test_now_ns() < deadline) {
		after = test_host_threads();
		if (after <= before)
			break;
		usleep(10000);
	}
	CHECK(after <= before, "host threads: %d before, %d after 64 short-lived",
	      before, after);
	PASS("64 short-lived threads, no shadow leaked");
}

int main(void)
{
	int before = test_host_threads();

	test_boot(NULL);
	test_lo_up();
	eight_threads();
	short_lived_threads();
	CHECK(lkl_sys_halt() == 0, "halt");
	CHECK(test_host_threads() == before, "threads after halt %d, before boot %d",
	      test_host_threads(), before);
	PASS("halt");
	return 0;
}
