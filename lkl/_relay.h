/*
 * The proxy's byte mover (lkl/_relay.c): one direction of a relayed
 * connection between a kernel socket and a host socket, without the GIL.
 */
#ifndef LKL_PY_RELAY_H
#define LKL_PY_RELAY_H

#include <stddef.h>
#include <stdint.h>

enum { RELAY_UP, RELAY_DOWN };	/* kernel -> host, host -> kernel */

/* How a direction ended (relay_run's result). */
enum {
	RELAY_EOF,		/* the source's FIN, passed on as a FIN */
	RELAY_SRC_RESET,	/* the source failed (a reset): *err */
	RELAY_DST_RESET,	/* the destination failed: *err */
	RELAY_IDLE,		/* nothing moved either way for idle_ms */
	RELAY_STOPPED,		/* relay_stop */
	RELAY_ERROR,		/* no memory for the buffer */
};

struct relay {
	int kfd, hfd;
	int idle_ms;		/* 0: no idle timeout */
	size_t bufsize;		/* 0: 64 KiB */
	int stop;
	int64_t last_ns;	/* CLOCK_MONOTONIC of the last byte moved */
	uint64_t bytes[2];
};

/* Blocking mode and the slice timeouts on both fds.  0 or -errno. */
int relay_setup(struct relay *r);
/* Move one direction until it ends; safe beside the other direction. */
int relay_run(struct relay *r, int dir, int *err);
uint64_t relay_bytes(struct relay *r, int dir);
/* Ask both directions to end (within one slice, 250 ms). */
void relay_stop(struct relay *r);

#endif
