/*
 * Under the preload library, fork: the child has no kernel of its own
 * (the parent's kernel threads are not in it), so its kernel sockets
 * fail with ENETDOWN, new ones too, close works, host fds work; the
 * parent's sockets keep working after the child is gone.
 *
 * Forked ROUNDS times, each right after traffic that keeps the readiness
 * poller busy, so a lock it holds at fork time would hang a child.  Then
 * a vfork child (the parent's memory until it execs, as posix_spawn and
 * Python's subprocess use) closes and dup2s the sockets the way a
 * spawned program's set-up does: the parent's sockets must not notice.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/wait.h>

#include "preload_util.h"

#define ROUNDS 20

static void child(int c, int s, int pipefd)
{
	char buf[16];
	int fd;

	CHECK(send(c, "x", 1, 0) < 0 && errno == ENETDOWN,
	      "child send: ENETDOWN");
	CHECK(recv(s, buf, 1, MSG_DONTWAIT) < 0 && errno == ENETDOWN,
	      "child recv: ENETDOWN");
	CHECK(write(c, "x", 1) < 0 && errno == ENETDOWN,
	      "child write: ENETDOWN");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd < 0 && errno == ENETDOWN, "child socket: ENETDOWN");
	CHECK(close(c) == 0, "child close");
	CHECK(close(s) == 0, "child close");
	CHECK(write(pipefd, "c", 1) == 1, "child pipe works");
	_exit(0);
}

int main(void)
{
	int lfd, port, c, s, status, pipefd[2], round;
	char buf[16];
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = tcp_listener(&port);
	tcp_pair(lfd, port, &c, &s);
	CHECK(pipe(pipefd) == 0, "pipe");

	for (round = 0; round < ROUNDS; round++) {
		/* In flight while forking: the poller syncs s and c. */
		CHECK(send(c, "ping", 4, 0) == 4, "parent send");
		pid = fork();
		CHECK(pid >= 0, "fork");
		if (pid == 0)
			child(c, s, pipefd[1]);
		CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %d", status);
		CHECK(read(pipefd[0], buf, 1) == 1 && buf[0] == 'c',
		      "child's byte");
		/* The parent's sockets, the child's close notwithstanding. */
		{
			struct pollfd p = { .fd = s, .events = POLLIN };

			CHECK(poll(&p, 1, 5000) == 1, "parent poll");
		}
		CHECK(recv(s, buf, 4, MSG_WAITALL) == 4 &&
		      !memcmp(buf, "ping", 4), "parent recv");
	}
	pid = vfork();
	CHECK(pid >= 0, "vfork");
	if (pid == 0) {
		/* Only what a vfork child may do: dup2, close, _exit. */
		if (dup2(s, 100) != 100 || close(100) || close(c) || close(s))
			_exit(3);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid (vfork)");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "vfork child status %d", status);
	CHECK(send(c, "after", 5, 0) == 5, "parent send after vfork");
	{
		struct pollfd p = { .fd = s, .events = POLLIN };

		CHECK(poll(&p, 1, 5000) == 1, "parent poll after vfork");
	}
	CHECK(recv(s, buf, 5, MSG_WAITALL) == 5 && !memcmp(buf, "after", 5),
	      "parent recv after vfork");
	printf("child ok\n");
	printf("done\n");
	return 0;
}
