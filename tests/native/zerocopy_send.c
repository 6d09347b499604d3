/*
 * MSG_ZEROCOPY from C: sends from kernel-visible memory
 * (lkl_zerocopy_alloc) and from the host heap over 127.0.0.1, the bytes
 * intact (SHA-256 on both ends), every send acknowledged on the error
 * queue (SO_EE_ORIGIN_ZEROCOPY, ids 0..n-1, ranges coalesced or not),
 * heap sends reported COPIED, and the allocator's misuse.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include <lkl/linux/socket_abi.h>
#include <lkl/linux/in.h>
#include <lkl/linux/time.h>
#include <lkl/linux/errqueue.h>
#include <lkl/linux/errno.h>
#include <lkl/linux/time_types.h>

#include "net_util.h"

#define CHUNK	(64 << 10)
#define SENDS	64

struct reader {
	long fd;
	uint64_t bytes;
	uint8_t digest[32];
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static char buf[CHUNK];
	struct sha256 h;
	long n;

	sha256_init(&h);
	while ((n = CHECK_OK(sys(LKL__NR_read, r->fd, (long)buf,
				 sizeof(buf)))) > 0) {
		sha256_update(&h, buf, n);
		r->bytes += n;
	}
	sha256_final(&h, r->digest);
	return NULL;
}

/*
 * Drain the error queue until ids 0..upto-1 are acknowledged (10 s at
 * most), *next being the first id not yet seen; counts COPIED ones.
 */
static void acknowledged(long fd, uint32_t upto, uint32_t *next, int *copied)
{
	int rounds;

	for (rounds = 0; *next < upto && rounds < 1000; rounds++) {
		char control[128];
		struct lkl_user_msghdr msg = {
			.msg_control = control,
			.msg_controllen = sizeof(control),
		};
		struct lkl_cmsghdr *cm = (struct lkl_cmsghdr *)control;
		struct lkl_sock_extended_err *ee;
		long n = sys(LKL__NR_recvmsg, fd, (long)&msg,
			     LKL_MSG_ERRQUEUE | LKL_MSG_DONTWAIT);

		if (n == -LKL_EAGAIN) {
			struct lkl__kernel_timespec ts = { 0, 10000000 };

			sys(LKL__NR_nanosleep, (long)&ts, 0);
			continue;
		}
		CHECK_OK(n);
		CHECK(msg.msg_controllen >= sizeof(*cm) + sizeof(*ee) &&
		      cm->cmsg_level == LKL_SOL_IP &&
		      cm->cmsg_type == LKL_IP_RECVERR, "a zerocopy cmsg");
		ee = (struct lkl_sock_extended_err *)(cm + 1);
		CHECK(ee->ee_errno == 0 &&
		      ee->ee_origin == LKL_SO_EE_ORIGIN_ZEROCOPY,
		      "origin %d errno %d", ee->ee_origin, ee->ee_errno);
		/* ee_info..ee_data: the next range, in order, no gap. */
		CHECK(ee->ee_info == *next && ee->ee_data >= ee->ee_info,
		      "range %u..%u after %u", ee->ee_info, ee->ee_data, *next);
		*next = ee->ee_data + 1;
		if (ee->ee_code & LKL_SO_EE_CODE_ZEROCOPY_COPIED)
			(*copied)++;
	}
	CHECK(*next >= upto, "acknowledged %u of %u sends", *next, upto);
}

/*
 * SENDS sends of CHUNK from buf with MSG_ZEROCOPY.  The buffer is
 * refilled only once the kernel acknowledged the send before: what
 * arrives is what was sent.
 */
static void stream(char *buf, const char *what, int port, int want_copied)
{
	struct reader r = { 0 };
	struct sha256 h;
	uint8_t digest[32];
	uint32_t next = 0;
	pthread_t t;
	long cli, srv;
	int i, copied = 0, one = 1;

	net_loopback_pair(LKL_AF_INET, port, &cli, &srv);
	CHECK_OK(sys(LKL__NR_setsockopt, cli, LKL_SOL_SOCKET, LKL_SO_ZEROCOPY,
		     (long)&one, sizeof(one)));
	r.fd = srv;
	pthread_create(&t, NULL, reader_main, &r);
	sha256_init(&h);
	for (i = 0; i < SENDS; i++) {
		long n;

		memset(buf, 'a' + i % 26, CHUNK);
		buf[0] = (char)i;
		sha256_update(&h, buf, CHUNK);
		/* Blocking: all of it, one send (one notification id). */
		n = CHECK_OK(sys(LKL__NR_sendto, cli, (long)buf, CHUNK,
				 LKL_MSG_ZEROCOPY, 0, 0));
		CHECK(n == CHUNK, "%s: short send %ld", what, n);
		acknowledged(cli, i + 1, &next, &copied);
	}
	CHECK_OK(sys(LKL__NR_shutdown, cli, 1 /* SHUT_WR */));
	pthread_join(t, NULL);
	sha256_final(&h, digest);
	CHECK(r.bytes == (uint64_t)SENDS * CHUNK, "received %llu",
	      (unsigned long long)r.bytes);
	CHECK(!memcmp(digest, r.digest, 32), "%s: the bytes differ", what);
	if (want_copied)
		CHECK(copied > 0, "%s: no COPIED notification", what);
	sys(LKL__NR_close, cli);
	sys(LKL__NR_close, srv);
	printf("ok %s: %d sends acknowledged\n", what, SENDS);
}

int main(void)
{
	void *kbuf;
	char *heap = malloc(CHUNK);

	test_boot(NULL);
	test_lo_up();
	CHECK(lkl_zerocopy_alloc(0, &kbuf) == -LKL_EINVAL, "zero length");
	CHECK(lkl_zerocopy_alloc(CHUNK, NULL) == -LKL_EINVAL, "no out pointer");
	CHECK_OK(lkl_zerocopy_alloc(CHUNK, &kbuf));
	stream(kbuf, "kernel-visible buffer", 7400, 0);
	CHECK(heap != NULL, "malloc");
	stream(heap, "host heap", 7401, 1);
	CHECK_OK(lkl_zerocopy_free(kbuf, CHUNK));
	PASS("allocator: alloc, send, free");
	CHECK(!strstr(test_console, "WARNING") && !strstr(test_console, "BUG"),
	      "kernel warnings:\n%s", test_console);
	PASS("no kernel warnings");
	free(heap);
	CHECK_OK(lkl_sys_halt());
	return 0;
}
