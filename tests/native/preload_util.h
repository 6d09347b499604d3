/*
 * Checks for the preload test programs: plain libc programs (no lkl
 * headers), run under LD_PRELOAD=liblkl-preload.so by tests/test_preload.py.
 */
#ifndef LKL_TEST_PRELOAD_UTIL_H
#define LKL_TEST_PRELOAD_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "FAIL %s:%d: %s (errno %d %s): ",	\
				__FILE__, __LINE__, #cond, errno,	\
				strerror(errno));			\
			fprintf(stderr, __VA_ARGS__);			\
			fprintf(stderr, "\n");				\
			exit(1);					\
		}							\
	} while (0)

#define PASS(name) do { printf("ok %s\n", name); fflush(stdout); } while (0)

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A TCP listener on 127.0.0.1 (the kernel's lo under the preload). */
static inline int tcp_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0, "socket");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	CHECK(listen(fd, 8) == 0, "listen");
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname");
	*port = ntohs(a.sin_port);
	return fd;
}

/* A connected pair of kernel TCP sockets over lo: *c and *s. */
static inline void tcp_pair(int lfd, int port, int *c, int *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(*c >= 0, "socket");
	CHECK(connect(*c, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	*s = accept(lfd, NULL, NULL);
	CHECK(*s >= 0, "accept");
}

#endif
