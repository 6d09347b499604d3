/*
 * A plain libc program for bench/attach.py: times lseek + read of a small
 * file, call by call.  Run as it is, it measures the host's own syscalls;
 * run under liblkl-attach.so on a /proc/sys path, every call crosses the
 * control socket to a library kernel in another process.
 *
 *	proxy_loop PATH N	prints "lseek_med_ns lseek_p99_ns read_med_ns read_p99_ns"
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long long *seek, *rd;
	char buf[64];
	int fd, i, n;

	if (argc != 3)
		return 2;
	n = atoi(argv[2]);
	fd = open(argv[1], O_RDONLY);
	seek = calloc(n, sizeof(*seek));
	rd = calloc(n, sizeof(*rd));
	if (fd < 0 || n <= 0 || !seek || !rd)
		return 1;
	for (i = 0; i < n; i++) {
		long long t0 = now_ns(), t1, t2;

		if (lseek(fd, 0, SEEK_SET) != 0)
			return 1;
		t1 = now_ns();
		if (read(fd, buf, sizeof(buf)) <= 0)
			return 1;
		t2 = now_ns();
		seek[i] = t1 - t0;
		rd[i] = t2 - t1;
	}
	qsort(seek, n, sizeof(*seek), cmp);
	qsort(rd, n, sizeof(*rd), cmp);
	printf("%lld %lld %lld %lld\n", seek[n / 2], seek[n * 99 / 100], rd[n / 2],
	       rd[n * 99 / 100]);
	close(fd);
	return 0;
}
