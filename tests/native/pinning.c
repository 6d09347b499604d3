/*
 * lkl_host_set_pin_cpu(0): every host thread the kernel creates (idle,
 * kernel threads, shadows, the timer) is pinned to CPU 0, read back from
 * /proc/self/task/<tid>/status; application threads keep their own
 * affinity (CPU 1 here when the machine has two CPUs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static pid_t app_tids[2];

static void *app_thread(void *arg)
{
	app_tids[1] = gettid();
	CHECK(sys(LKL__NR_getpid) == 1, "getpid from a second app thread");
	usleep(100000);
	return NULL;
}

static void allowed_cpus(pid_t tid, char *out, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	out[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Cpus_allowed_list:", 18))
			sscanf(line + 18, "%63s", out);
	if (f)
		fclose(f);
}

int main(void)
{
	int app_cpu = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 1 : 0;
	char want_app[8], cpus[64];
	struct dirent *e;
	cpu_set_t set;
	pthread_t t;
	int kernel_threads = 0;
	DIR *d;

	CPU_ZERO(&set);
	CPU_SET(app_cpu, &set);
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0, "pin the app thread");
	snprintf(want_app, sizeof(want_app), "%d", app_cpu);
	app_tids[0] = gettid();

	CHECK(lkl_host_set_pin_cpu(0) == 0, "set pin cpu");
	CHECK(lkl_host_set_pin_cpu(100000) < 0, "an impossible CPU is refused");
	test_boot(NULL);
	pthread_create(&t, NULL, app_thread, NULL);
	usleep(50000);

	d = opendir("/proc/self/task");
	while ((e = readdir(d))) {
		pid_t tid = atoi(e->d_name);

		if (tid <= 0)
			continue;
		allowed_cpus(tid, cpus, sizeof(cpus));
		if (tid == app_tids[0] || tid == app_tids[1]) {
			CHECK(!strcmp(cpus, want_app), "app thread %d: cpus %s", tid, cpus);
		} else {
			CHECK(!strcmp(cpus, "0"), "kernel thread %d: cpus %s", tid, cpus);
			kernel_threads++;
		}
	}
	closedir(d);
	pthread_join(t, NULL);
	CHECK(kernel_threads >= 5, "only %d kernel threads seen", kernel_threads);
	printf("ok %d kernel threads pinned to CPU 0, app threads on CPU %d\n",
	       kernel_threads, app_cpu);
	CHECK(lkl_sys_halt() == 0, "halt");
	PASS("halt");
	return 0;
}
