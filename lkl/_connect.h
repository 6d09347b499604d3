/*
 * A blocking connect() on a helper thread, for the main thread (see
 * _connect.c).  Every function returns 0 or a negative errno unless said
 * otherwise.
 */
#ifndef LKL_PY_CONNECT_H
#define LKL_PY_CONNECT_H

struct glue_connect;

/* Start connect(kfd, addr, len) on a new helper thread. */
int glue_connect_start(int kfd, const void *addr, int len,
		       struct glue_connect **out);
/* Wait up to timeout seconds: 1 once it returned (*ret: its result), else 0. */
int glue_connect_wait(struct glue_connect *c, double timeout, long *ret);
/* The waiter is done with it (the helper may still be connecting). */
void glue_connect_put(struct glue_connect *c);

#endif
