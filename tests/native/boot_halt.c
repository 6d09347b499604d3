/*
 * One boot, one syscall, one halt; prints the times taken and checks
 * that halt leaves no host thread behind.  Run many times in fresh
 * processes by the test suite.
 */
#include <string.h>

#include "test_util.h"

/* Resident set size of this process in KiB (VmRSS of /proc/self/status). */
static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

int main(void)
{
	int before = test_host_threads();
	uint64_t t0, t1, t2, t3;
	long rss;

	t0 = test_now_ns();
	test_boot(NULL);
	t1 = test_now_ns();
	CHECK(sys(LKL__NR_getpid) == 1, "getpid");
	t2 = test_now_ns();
	rss = rss_kb();
	CHECK(lkl_sys_halt() == 0, "halt");
	t3 = test_now_ns();
	CHECK(test_host_threads() == before, "threads after halt %d, before %d",
	      test_host_threads(), before);
	printf("boot_ns=%llu first_syscall_ns=%llu halt_ns=%llu rss_kb=%ld\n",
	       (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	       (unsigned long long)(t3 - t2), rss);
	return 0;
}
