/*
 * The proxy's byte mover (lkl/proxy): one direction of a relayed
 * connection, between a kernel socket (lkl_syscall on its kfd) and a host
 * socket, run by a host thread without the GIL.
 *
 * Each direction is a loop of one blocking recv from its source into a
 * private buffer and blocking sends of it into its destination: one copy
 * in user space per byte, and backpressure for free (a destination that
 * does not take data stops the loop reading, so at most one buffer is
 * held per direction).  Both sockets get send and receive timeouts of
 * RELAY_SLICE_MS, so a blocked loop looks at the stop flag and the idle
 * deadline that often.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/socket.h>
#include <lkl/linux/fcntl.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/time_types.h>
#include "_glue.h"
#include "_relay.h"

#define RELAY_SLICE_MS 250

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long ksys(long nr, long a, long b, long c, long d, long e, long f)
{
	long params[6] = { a, b, c, d, e, f };

	return glue_syscall(nr, params);
}

/* Blocking mode with slice timeouts on both sockets. */
int relay_setup(struct relay *r)
{
	struct lkl__kernel_sock_timeval kt = { 0, RELAY_SLICE_MS * 1000 };
	struct timeval ht = { 0, RELAY_SLICE_MS * 1000 };
	long flags;
	int hflags;

	flags = ksys(LKL__NR_fcntl, r->kfd, LKL_F_GETFL, 0, 0, 0, 0);
	if (flags < 0)
		return flags;
	if (flags & LKL_O_NONBLOCK)
		ksys(LKL__NR_fcntl, r->kfd, LKL_F_SETFL, flags & ~LKL_O_NONBLOCK, 0, 0, 0);
	if (ksys(LKL__NR_setsockopt, r->kfd, LKL_SOL_SOCKET, LKL_SO_RCVTIMEO_NEW,
		 (long)&kt, sizeof(kt), 0) < 0 ||
	    ksys(LKL__NR_setsockopt, r->kfd, LKL_SOL_SOCKET, LKL_SO_SNDTIMEO_NEW,
		 (long)&kt, sizeof(kt), 0) < 0)
		return -LKL_EINVAL;
	hflags = fcntl(r->hfd, F_GETFL);
	if (hflags < 0)
		return -errno;
	if (hflags & O_NONBLOCK)
		fcntl(r->hfd, F_SETFL, hflags & ~O_NONBLOCK);
	if (setsockopt(r->hfd, SOL_SOCKET, SO_RCVTIMEO, &ht, sizeof(ht)) < 0 ||
	    setsockopt(r->hfd, SOL_SOCKET, SO_SNDTIMEO, &ht, sizeof(ht)) < 0)
		return -errno;
	__atomic_store_n(&r->last_ns, now_ns(), __ATOMIC_RELAXED);
	return 0;
}

/* recv/send/shutdown on one side: the kernel's (kernel != 0) or the host's. */
static long side_recv(struct relay *r, int kernel, char *buf, size_t len)
{
	long n;

	if (kernel)
		return ksys(LKL__NR_recvfrom, r->kfd, (long)buf, len, 0, 0, 0);
	n = recv(r->hfd, buf, len, 0);
	return n < 0 ? -errno : n;
}

static long side_send(struct relay *r, int kernel, const char *buf, size_t len)
{
	long n;

	if (kernel)
		return ksys(LKL__NR_sendto, r->kfd, (long)buf, len, LKL_MSG_NOSIGNAL, 0, 0);
	n = send(r->hfd, buf, len, MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

static void side_shutdown_write(struct relay *r, int kernel)
{
	if (kernel)
		ksys(LKL__NR_shutdown, r->kfd, LKL_SHUT_WR, 0, 0, 0, 0);
	else
		shutdown(r->hfd, SHUT_WR);
}

static int waiting(long ret)
{
	return ret == -EAGAIN || ret == -EINTR;
}

/* An ending that is not the stream's own: a stop request or idleness. */
static int interrupted(struct relay *r)
{
	int64_t idle = r->idle_ms * (int64_t)1000000;

	if (__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
		return RELAY_STOPPED;
	if (idle > 0 && now_ns() - __atomic_load_n(&r->last_ns, __ATOMIC_RELAXED) > idle)
		return RELAY_IDLE;
	return 0;
}

static void moved(struct relay *r, int dir, long n)
{
	__atomic_add_fetch(&r->bytes[dir], n, __ATOMIC_RELAXED);
	__atomic_store_n(&r->last_ns, now_ns(), __ATOMIC_RELAXED);
}

int relay_run(struct relay *r, int dir, int *err)
{
	int from_kernel = dir == RELAY_UP;
	size_t size = r->bufsize ? r->bufsize : 65536;
	char *buf = malloc(size);
	int end = RELAY_ERROR;
	long n, m, off;

	*err = 0;
	if (!buf) {
		*err = ENOMEM;
		return RELAY_ERROR;
	}
	for (;;) {
		end = interrupted(r);
		if (end)
			break;
		n = side_recv(r, from_kernel, buf, size);
		if (waiting(n))
			continue;
		if (n == 0) {
			side_shutdown_write(r, !from_kernel);
			end = RELAY_EOF;
			break;
		}
		if (n < 0) {
			*err = -n;
			end = RELAY_SRC_RESET;
			break;
		}
		__atomic_store_n(&r->last_ns, now_ns(), __ATOMIC_RELAXED);
		for (off = 0; off < n; ) {
			m = side_send(r, !from_kernel, buf + off, n - off);
			if (m > 0) {
				off += m;
				moved(r, dir, m);
				continue;
			}
			if (!waiting(m)) {
				*err = -m;
				end = RELAY_DST_RESET;
				goto out;
			}
			end = interrupted(r);
			if (end)
				goto out;
		}
	}
out:
	free(buf);
	return end;
}

uint64_t relay_bytes(struct relay *r, int dir)
{
	return __atomic_load_n(&r->bytes[dir], __ATOMIC_RELAXED);
}

void relay_stop(struct relay *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
}
