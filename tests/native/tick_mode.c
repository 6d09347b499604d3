/*
 * The tick when idle.  With dyntick-idle (the default) an idle kernel
 * takes few timer interrupts; with "nohz=off" (the paper's choice for
 * direct syscalls) it takes one per tick, HZ=1000.  Prints the timer
 * interrupts counted in /proc/interrupts over 500 ms of idleness.
 *
 *   tick_mode [extra kernel command line]
 */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>


#include "test_util.h"

static long timer_irqs(void)
{
	char buf[4096], *line;

	test_read_kernel_file("/proc/interrupts", buf, sizeof(buf));
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, "timer"))
			return strtol(strchr(line, ':') + 1, NULL, 10);
	CHECK(0, "no timer line in /proc/interrupts");
	return -1;
}

int main(int argc, char **argv)
{
	long before, after;

	test_boot(argc > 1 ? argv[1] : NULL);
	usleep(100000);		/* let boot-time timers settle */
	before = timer_irqs();
	usleep(500000);
	after = timer_irqs();
	printf("timer_irqs_per_500ms=%ld\n", after - before);
	CHECK(lkl_sys_halt() == 0, "halt");
	return 0;
}
