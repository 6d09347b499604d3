/*
 * The adaptive busy-poll policy of a thread serving a device
 * (native/host/serve.h, lkl_host_spin_next): whatever the waits, the
 * spin stays within [0, cap]; quick answers make it spin, a run of long
 * waits stops the spinning, one quick answer starts it again.  Pure
 * arithmetic on given wait times: nothing here is timed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

unsigned int lkl_host_spin_next(unsigned int spin_ns, unsigned int max_ns,
				uint64_t waited_ns, int hit);

int main(void)
{
	const unsigned int cap = 50000;		/* 50 µs */
	unsigned int spin = 0, prev;
	uint64_t seed = 12345;
	int i;

	/* Off until a wait shows traffic that answers within the cap. */
	CHECK(lkl_host_spin_next(0, cap, 10000000, 0) == 0, "idle stays off");
	spin = lkl_host_spin_next(0, cap, 15000, 0);
	CHECK(spin == 30000, "a 15 µs answer: spin 30 µs, not %u", spin);
	/* Hits keep it; a slower answer within the cap raises it to the cap. */
	CHECK(lkl_host_spin_next(spin, cap, 5000, 1) == 30000, "a hit keeps it");
	CHECK(lkl_host_spin_next(spin, cap, 40000, 0) == cap, "capped");
	printf("ok quick answers make it spin, within the cap\n");

	/* Long waits halve it down to off, in a bounded number of waits. */
	spin = cap;
	for (i = 0; i < 40 && spin; i++) {
		prev = spin;
		spin = lkl_host_spin_next(spin, cap, 1000000000ULL, 0);
		CHECK(spin < prev, "a long wait lowers the spin (%u -> %u)", prev, spin);
	}
	CHECK(spin == 0 && i <= 7, "off after %d long waits", i);
	printf("ok an idle device stops spinning after %d waits\n", i);

	/* Any sequence: never above the cap, whatever the old value. */
	for (i = 0; i < 1000000; i++) {
		uint64_t w;
		int hit;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		w = (seed >> 20) % 200000;
		if ((seed >> 60) == 0)
			w = seed >> 4;	/* now and then a huge wait */
		hit = (seed >> 33) & 1;
		prev = spin;
		spin = lkl_host_spin_next(spin, cap, w, hit);
		CHECK(spin <= cap, "spin %u above the cap", spin);
		CHECK(!hit || spin >= (prev < cap ? prev : cap),
		      "a hit lowered the spin (%u -> %u)", prev, spin);
	}
	/* A cap lowered under a running spin takes effect at once. */
	CHECK(lkl_host_spin_next(cap, 1000, 500, 1) <= 1000, "new cap");
	CHECK(lkl_host_spin_next(cap, 0, 500, 1) == 0, "cap 0: off");
	printf("ok the spin stays within [0, cap]\n");
	return 0;
}
