/*
 * getpid latency through lkl beside the host's own getpid syscall.
 *
 *   getpid_latency [--pin CPU] [--cmdline "..."] [--iters N]
 *
 * Times every call with the monotonic clock and prints one JSON object:
 * median and p99 in ns for lkl and for the host syscall (made with
 * syscall(2), so glibc's pid cache does not hide it), plus the clock's
 * own overhead, which is not subtracted.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>

static uint64_t now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double median, p99, mean;
};

static struct stats summarize(uint64_t *t, long n)
{
	struct stats s;
	double sum = 0;
	long i;

	qsort(t, n, sizeof(*t), cmp);
	for (i = 0; i < n; i++)
		sum += t[i];
	s.median = t[n / 2];
	s.p99 = t[n * 99 / 100];
	s.mean = sum / n;
	return s;
}

static void quiet(const char *s, int n)
{
}

int main(int argc, char **argv)
{
	const char *cmdline = "mem=64M";
	long iters = 100000, i;
	int pin = -1;
	uint64_t *t;
	struct stats lkl, host, clk;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pin") && i + 1 < argc)
			pin = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc)
			cmdline = argv[++i];
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
	}
	t = malloc(iters * sizeof(*t));

	if (pin >= 0 && lkl_host_set_pin_cpu(pin)) {
		fprintf(stderr, "cannot pin to CPU %d\n", pin);
		return 1;
	}
	lkl_host_ops.print = quiet;
	if (lkl_start_kernel(&lkl_host_ops, cmdline)) {
		fprintf(stderr, "boot failed\n");
		return 1;
	}

	for (i = 0; i < 1000; i++)	/* warm up: the shadow thread exists */
		lkl_syscall(LKL__NR_getpid, NULL);
	for (i = 0; i < iters; i++) {
		uint64_t t0 = now();

		lkl_syscall(LKL__NR_getpid, NULL);
		t[i] = now() - t0;
	}
	lkl = summarize(t, iters);

	for (i = 0; i < iters; i++) {
		uint64_t t0 = now();

		syscall(SYS_getpid);
		t[i] = now() - t0;
	}
	host = summarize(t, iters);

	for (i = 0; i < iters; i++) {
		uint64_t t0 = now();

		t[i] = now() - t0;
	}
	clk = summarize(t, iters);

	lkl_sys_halt();
	printf("{\"cmdline\": \"%s\", \"pin_cpu\": %d, \"iters\": %ld, "
	       "\"lkl_median_ns\": %.0f, \"lkl_p99_ns\": %.0f, \"lkl_mean_ns\": %.0f, "
	       "\"host_median_ns\": %.0f, \"host_p99_ns\": %.0f, "
	       "\"clock_median_ns\": %.0f, \"ratio_median\": %.2f}\n",
	       cmdline, pin, iters, lkl.median, lkl.p99, lkl.mean, host.median,
	       host.p99, clk.median, lkl.median / host.median);
	free(t);
	return 0;
}
