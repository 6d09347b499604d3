/*
 * lkl: the control endpoint of a running kernel.
 *
 * lkl_control_start(name) serves this process's kernel to other
 * processes of the same user over a Unix socket, <dir>/<name>.sock, where
 * <dir> is $XDG_RUNTIME_DIR/lkl, /run/lkl for root, else /tmp/lkl-<uid>
 * (made mode 0700; the socket is mode 0600, and a peer whose SO_PEERCRED
 * uid is neither ours nor root is refused).  A host thread accepts
 * clients; each client gets its own thread that runs the syscalls it asks
 * for in the kernel (the protocol: native/control/protocol.h), with its
 * own table of the kernel fds it opened, closed when it disconnects.
 * The attach library (build/lib/liblkl-attach.so) makes unmodified
 * tools such as ip, ss, tc, sysctl and nstat such clients.
 *
 * Functions return 0 (or a count) on success and a negative errno.
 */
#ifndef LKL_CONTROL_H
#define LKL_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lkl_netdev;

/* The directory of the control sockets of this user (see above). */
int lkl_control_dir(char *buf, size_t len);

/*
 * Serve the kernel as `name` (letters, digits, '.', '_', '-'; at most
 * 64).  -EEXIST if a live process serves that name, -EBUSY if this
 * process serves already.  A stale socket of a dead process is replaced.
 */
int lkl_control_start(const char *name);

/* Stop serving: disconnect the clients, join the threads, unlink. */
int lkl_control_stop(void);

/* The socket path served, or "" when not serving. */
const char *lkl_control_path(void);

/*
 * Devices a client may capture on (by interface name): register each
 * one; unregister before freeing it (that stops its captures).
 */
int lkl_control_add_netdev(struct lkl_netdev *dev);
void lkl_control_del_netdev(struct lkl_netdev *dev);

struct lkl_control_stats {
	uint64_t clients;	/* connected now */
	uint64_t accepted;	/* ever */
	uint64_t refused;	/* peer credential check failed */
	uint64_t requests;	/* well-formed requests served */
	uint64_t malformed;	/* messages refused as malformed */
	uint64_t errors;	/* requests answered with an error */
	uint64_t open_fds;	/* kernel fds held for clients now */
};

void lkl_control_get_stats(struct lkl_control_stats *st);

#ifdef __cplusplus
}
#endif

#endif
