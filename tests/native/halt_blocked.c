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
#include <lkl/asm-generic/fcntl.h>
#include <lkl/linux/fcntl.h>

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

/* struct linux_dirent64 */
struct dirent64 {
	uint64_t ino;
	int64_t off;
	uint16_t reclen;
	uint8_t type;
	char name[];
};

/* The state letter of the kernel's task tid of the init process. */
static char task_state(const char *tid)
{
	char path[64], buf[256], *paren;
	long fd, n;

	snprintf(path, sizeof(path), "/proc/1/task/%s/stat", tid);
	fd = sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path, LKL_O_RDONLY, 0);
	if (fd < 0)
		return '?';	/* gone meanwhile */
	n = sys(LKL__NR_read, fd, (long)buf, sizeof(buf) - 1);
	sys(LKL__NR_close, fd);
	buf[n > 0 ? n : 0] = 0;
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' ? paren[2] : '?';
}

/*
 * How many tasks of the init process (every shadow is one) sleep
 * interruptibly, as the kernel reports them: 'S' in their stat.
 */
static int sleeping_tasks(void)
{
	char buf[4096];
	long fd, n, off;
	int count = 0;

	fd = CHECK_OK(sys(LKL__NR_openat, LKL_AT_FDCWD, (long)"/proc/1/task",
			  LKL_O_RDONLY | LKL_O_DIRECTORY, 0));
	while ((n = sys(LKL__NR_getdents64, fd, (long)buf, sizeof(buf))) > 0) {
		for (off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			off += d->reclen;
			if (d->name[0] != '.' && task_state(d->name) == 'S')
				count++;
		}
	}
	sys(LKL__NR_close, fd);
	return count;
}

int main(void)
{
	struct lkl_sockaddr_in a = { .sin_family = LKL_AF_INET };
	void *(*fns[4])(void *) = { in_accept, in_recv, in_read, in_sleep };
	int before = test_host_threads(), fds[2], i, asleep;
	uint64_t deadline;
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

	CHECK(sleeping_tasks() == 0, "%d tasks asleep before the calls",
	      sleeping_tasks());
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, fns[i], NULL);
	/* Halt only once the kernel shows all four asleep in their calls. */
	deadline = test_now_ns() + 10000000000ULL;
	while ((asleep = sleeping_tasks()) < 4 && test_now_ns() < deadline)
		usleep(1000);
	CHECK(asleep == 4, "%d of 4 calls asleep in the kernel", asleep);
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
