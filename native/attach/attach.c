/*
 * liblkl-attach.so: run an unmodified tool (ip, ss, tc, sysctl, nstat,
 * ethtool, cat) against a library kernel instead of the host's.
 *
 *	LKL_ATTACH=/run/lkl/NAME.sock LD_PRELOAD=liblkl-attach.so ss -tni
 *
 * The tool's network-facing calls go to the kernel behind the control
 * socket (protocol.h): sockets of the netlink, inet, inet6 and packet
 * families, and files and directories under /proc/net, /proc/sys,
 * /sys/class/net and /sys/devices/virtual/net.  Everything else (other
 * files, stdio, the terminal, Unix sockets) stays local.  A forwarded fd
 * is a real local placeholder (a memfd), so fd numbers never collide; a
 * table maps it to the kernel fd.
 *
 * Only the calls a tool makes through the dynamic linker are seen:
 * libc-internal calls (getifaddrs, if_nametoindex) still reach the host.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "../common/optional_arg.h"

#define API __attribute__((visibility("default")))
#define MAX_LOCAL_FD	4096

enum { FD_NONE, FD_SOCKET, FD_NETLINK, FD_FILE };

static struct {
	int remote;		/* the kernel fd + 1; 0: a local fd */
	int kind;
	int nonblock;		/* O_NONBLOCK: its calls carry MSG_DONTWAIT */
} fdmap[MAX_LOCAL_FD];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ctl = -1;		/* the control socket; -1: not attached */
static uint32_t seq;

#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* ---- the connection ---------------------------------------------------- */

static void die(const char *what, int err)
{
	const char *path = getenv("LKL_ATTACH");

	fprintf(stderr, "lkl-attach: %s %s: %s\n", what, path ? path : "",
		strerror(err));
	_exit(111);
}

static int io_full(int write_side, void *buf, size_t n)
{
	while (n) {
		ssize_t r = write_side ?
			syscall(SYS_sendto, ctl, buf, n, MSG_NOSIGNAL, NULL, 0) :
			syscall(SYS_recvfrom, ctl, buf, n, 0, NULL, NULL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf = (char *)buf + r;
		n -= r;
	}
	return 0;
}

/*
 * One request: send it with data (in, inlen), receive the reply, its
 * data into out (at most outcap bytes; the rest is read and dropped).
 * Returns the result (-errno on failure); *outlen gets the bytes stored.
 */
static long call(int op, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
		 const void *in, size_t inlen, void *out, size_t outcap,
		 size_t *outlen, int64_t ret[3])
{
	struct ctl_request q = {
		.magic = CTL_MAGIC, .version = CTL_VERSION, .op = op,
		.len = inlen, .arg = { a0, a1, a2, a3 },
	};
	struct ctl_reply rep;
	size_t keep;

	if (inlen > CTL_MAX_DATA)
		return -EMSGSIZE;
	pthread_mutex_lock(&lock);
	q.seq = ++seq;
	/* A server that refused us hung up: its reply (still queued) says why. */
	if (io_full(1, &q, sizeof(q)) || (inlen && io_full(1, (void *)in, inlen)))
		errno = 0;
	if (io_full(0, &rep, sizeof(rep)))
		die("lost the kernel's control socket", errno ? errno : EPIPE);
	if (rep.magic != CTL_MAGIC || rep.seq != q.seq || rep.len > CTL_MAX_DATA)
		die("bad reply on", EPROTO);
	keep = rep.len < outcap ? rep.len : outcap;
	if (keep && io_full(0, out, keep))
		die("lost the kernel's control socket", errno ? errno : EPIPE);
	for (size_t left = rep.len - keep; left;) {
		char sink[4096];
		size_t n = left < sizeof(sink) ? left : sizeof(sink);

		if (io_full(0, sink, n))
			die("lost the kernel's control socket", EPIPE);
		left -= n;
	}
	pthread_mutex_unlock(&lock);
	if (outlen)
		*outlen = keep;
	if (ret)
		memcpy(ret, rep.ret, sizeof(rep.ret));
	return rep.result;
}

/* A result as libc returns it: -1 with errno, or the value. */
static long ret_errno(long r)
{
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

__attribute__((constructor)) static void attach_init(void)
{
	const char *path = getenv("LKL_ATTACH");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[80];
	long r;

	if (!path || !*path)
		return;
	if (strlen(path) >= sizeof(sa.sun_path))
		die("socket path too long:", ENAMETOOLONG);
	strcpy(sa.sun_path, path);
	ctl = syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl < 0)
		die("cannot make a socket for", errno);
	if (syscall(SYS_connect, ctl, &sa, sizeof(sa)))
		die("cannot attach to", errno);
	/* Out of the way of the fds the tool expects (0, 1, 2, 3...). */
	r = fcntl(ctl, F_DUPFD_CLOEXEC, 512);
	if (r >= 0) {
		close(ctl);
		ctl = r;
	}
	r = call(CTL_HELLO, 0, 0, 0, 0, NULL, 0, name, sizeof(name) - 1, NULL,
		 NULL);
	if (r < 0)
		die("refused by the control server at", -r);
}

/* ---- the fd table ------------------------------------------------------- */

static int remote_of(int fd)
{
	if (ctl < 0 || fd < 0 || fd >= MAX_LOCAL_FD)
		return -1;
	return fdmap[fd].remote - 1;
}

/* A local placeholder for kernel fd remote; -1 (the remote one closed). */
static int placeholder(int remote, int kind, int cloexec)
{
	int fd = memfd_create("lkl-attach", cloexec ? MFD_CLOEXEC : 0);

	if (fd >= MAX_LOCAL_FD) {
		close(fd);
		fd = -1;
		errno = EMFILE;
	}
	if (fd < 0) {
		int e = errno;

		call(CTL_CLOSE, remote, 0, 0, 0, NULL, 0, NULL, 0, NULL, NULL);
		errno = e;
		return -1;
	}
	fdmap[fd].remote = remote + 1;
	fdmap[fd].kind = kind;
	fdmap[fd].nonblock = 0;
	return fd;
}

/*
 * Netlink datagrams fetched ahead (CTL_RECVBATCH): a dump's replies come
 * in one round trip, and recvmsg takes them from here one by one.
 */
static struct batch {
	uint8_t *buf;
	size_t len, pos;
} batches[MAX_LOCAL_FD];

static void batch_free(int fd)
{
	free(batches[fd].buf);
	batches[fd].buf = NULL;
	batches[fd].len = batches[fd].pos = 0;
}

static int batch_ready(int fd)
{
	return fd >= 0 && fd < MAX_LOCAL_FD && batches[fd].pos < batches[fd].len;
}

static ssize_t any_recv(int fd, int r, const struct iovec *iov, size_t cnt,
			int flags, struct sockaddr *sa, socklen_t *alen,
			int *msg_flags);
static ssize_t remote_sendto(int r, const void *buf, size_t n, int flags,
			     const struct sockaddr *sa, socklen_t alen);

static int is_socket(int fd)
{
	return fdmap[fd].kind == FD_SOCKET || fdmap[fd].kind == FD_NETLINK;
}

/* The flags of a call on fd: MSG_DONTWAIT added if it is non-blocking. */
static int io_flags(int fd, int flags)
{
	return fdmap[fd].nonblock ? flags | MSG_DONTWAIT : flags;
}

/* ---- which paths are the kernel's --------------------------------------- */

static const char *const kernel_dirs[] = {
	"/proc/net", "/proc/self/net", "/proc/sys", "/sys/class/net",
	"/sys/devices/virtual/net",
};

static int kernel_path(const char *path)
{
	size_t i;

	if (ctl < 0 || !path)
		return 0;
	for (i = 0; i < sizeof(kernel_dirs) / sizeof(kernel_dirs[0]); i++) {
		size_t n = strlen(kernel_dirs[i]);

		if (!strncmp(path, kernel_dirs[i], n) &&
		    (path[n] == 0 || path[n] == '/'))
			return 1;
	}
	return 0;
}

static int remote_open(const char *path, int flags, mode_t mode)
{
	long r = call(CTL_OPEN, flags & ~O_CLOEXEC, mode, 0, 0, path,
		      strlen(path) + 1, NULL, 0, NULL, NULL);

	if (r < 0)
		return ret_errno(r);
	return placeholder(r, FD_FILE, flags & O_CLOEXEC);
}

/* ---- open, read, write, close ----------------------------------------- */

static int open_common(int dirfd, const char *path, int flags, mode_t mode,
		       int at)
{
	REAL(openat);

	if ((dirfd == AT_FDCWD || path[0] == '/') && kernel_path(path))
		return remote_open(path, flags, mode);
	(void)at;
	return real_openat(dirfd, path, flags, mode);
}

static int takes_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

/* open's mode: passed with O_CREAT or O_TMPFILE only. */
#define OPEN_MODE(flags) OPTIONAL_ARG(flags, mode_t, takes_mode(flags))

API int open(const char *path, int flags, ...)
{
	return open_common(AT_FDCWD, path, flags, OPEN_MODE(flags), 0);
}

API int open64(const char *path, int flags, ...)
{
	return open_common(AT_FDCWD, path, flags | O_LARGEFILE,
			   OPEN_MODE(flags), 0);
}

API int openat(int dirfd, const char *path, int flags, ...)
{
	return open_common(dirfd, path, flags, OPEN_MODE(flags), 1);
}

API int openat64(int dirfd, const char *path, int flags, ...)
{
	return open_common(dirfd, path, flags | O_LARGEFILE, OPEN_MODE(flags),
			   1);
}

API int __open_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0, 0);
}

API int __open64_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags | O_LARGEFILE, 0, 0);
}

API int __openat_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags, 0, 1);
}

API int __openat64_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags | O_LARGEFILE, 0, 1);
}

static ssize_t remote_read(int r, void *buf, size_t n)
{
	size_t got;
	long res;

	if (n > CTL_MAX_DATA)
		n = CTL_MAX_DATA;
	res = call(CTL_READ, r, n, 0, 0, NULL, 0, buf, n, &got, NULL);
	return ret_errno(res);
}

static ssize_t remote_write(int r, const void *buf, size_t n)
{
	size_t done = 0;

	do {
		size_t k = n - done > CTL_MAX_DATA ? CTL_MAX_DATA : n - done;
		long res = call(CTL_WRITE, r, 0, 0, 0, (const char *)buf + done,
				k, NULL, 0, NULL, NULL);

		if (res < 0)
			return done ? (ssize_t)done : ret_errno(res);
		done += res;
		if ((size_t)res < k)
			break;
	} while (done < n);
	return done;
}

API ssize_t read(int fd, void *buf, size_t n)
{
	int r = remote_of(fd);
	REAL(read);

	struct iovec iov = { buf, n };

	if (r < 0)
		return real_read(fd, buf, n);
	if (is_socket(fd))
		return any_recv(fd, r, &iov, 1, io_flags(fd, 0), NULL, NULL, NULL);
	return remote_read(r, buf, n);
}

API ssize_t write(int fd, const void *buf, size_t n)
{
	int r = remote_of(fd);
	REAL(write);

	if (r >= 0 && is_socket(fd))
		return remote_sendto(r, buf, n, io_flags(fd, 0), NULL, 0);
	return r < 0 ? real_write(fd, buf, n) : remote_write(r, buf, n);
}

API off_t lseek(int fd, off_t off, int whence)
{
	int r = remote_of(fd);
	REAL(lseek);

	if (r < 0)
		return real_lseek(fd, off, whence);
	return ret_errno(call(CTL_LSEEK, r, off, whence, 0, NULL, 0, NULL, 0,
			      NULL, NULL));
}

API off64_t lseek64(int fd, off64_t off, int whence)
{
	return lseek(fd, off, whence);
}

API int close(int fd)
{
	int r = remote_of(fd);
	REAL(close);

	if (fd == ctl && ctl >= 0) {
		errno = EBADF;	/* a tool closing every fd: keep ours */
		return -1;
	}
	if (r >= 0) {
		fdmap[fd].remote = 0;
		batch_free(fd);
		call(CTL_CLOSE, r, 0, 0, 0, NULL, 0, NULL, 0, NULL, NULL);
	}
	return real_close(fd);
}

/* cat tries copy_file_range first: make it fall back to read/write. */
API ssize_t copy_file_range(int in, loff_t *inoff, int out, loff_t *outoff,
			    size_t len, unsigned int flags)
{
	REAL(copy_file_range);

	if (remote_of(in) >= 0 || remote_of(out) >= 0) {
		errno = EINVAL;
		return -1;
	}
	return real_copy_file_range(in, inoff, out, outoff, len, flags);
}

API ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	REAL(sendfile);

	if (remote_of(in) >= 0 || remote_of(out) >= 0) {
		errno = EINVAL;
		return -1;
	}
	return real_sendfile(out, in, off, count);
}

API ssize_t sendfile64(int out, int in, off64_t *off, size_t count)
{
	return sendfile(out, in, off, count);
}

/* ---- stdio on kernel files ------------------------------------------------ */

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
	return remote_read((int)(intptr_t)c, buf, n);
}

static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
	ssize_t r = remote_write((int)(intptr_t)c, buf, n);

	return r < 0 ? 0 : r;
}

static int cookie_seek(void *c, off64_t *off, int whence)
{
	long r = call(CTL_LSEEK, (int)(intptr_t)c, *off, whence, 0, NULL, 0,
		      NULL, 0, NULL, NULL);

	if (r < 0)
		return ret_errno(r);
	*off = r;
	return 0;
}

static int cookie_close(void *c)
{
	return ret_errno(call(CTL_CLOSE, (int)(intptr_t)c, 0, 0, 0, NULL, 0,
			      NULL, 0, NULL, NULL));
}

static int mode_flags(const char *mode)
{
	int flags = strchr(mode, '+') ? O_RDWR : 0;

	switch (mode[0]) {
	case 'r':
		return flags ? flags : O_RDONLY;
	case 'w':
		return (flags ? flags : O_WRONLY) | O_CREAT | O_TRUNC;
	case 'a':
		return (flags ? flags : O_WRONLY) | O_CREAT | O_APPEND;
	default:
		return -1;
	}
}

static FILE *remote_fopen(const char *path, const char *mode)
{
	cookie_io_functions_t io = {
		cookie_read, cookie_write, cookie_seek, cookie_close,
	};
	int flags = mode_flags(mode);
	FILE *f;
	long r;

	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	r = call(CTL_OPEN, flags, 0644, 0, 0, path, strlen(path) + 1, NULL, 0,
		 NULL, NULL);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	f = fopencookie((void *)(intptr_t)r, mode, io);
	if (!f)
		cookie_close((void *)(intptr_t)r);
	return f;
}

/* fopen and fopen64: a kernel path opens through the control socket. */
#define PATH_FOPEN(name)						\
API FILE *name(const char *path, const char *mode)			\
{									\
	REAL(name);							\
									\
	return kernel_path(path) ? remote_fopen(path, mode) :		\
		real_##name(path, mode);				\
}

PATH_FOPEN(fopen)
PATH_FOPEN(fopen64)

/* A FILE over a placeholder: the kernel fd moves into the cookie. */
API FILE *fdopen(int fd, const char *mode)
{
	cookie_io_functions_t io = {
		cookie_read, cookie_write, cookie_seek, cookie_close,
	};
	int r = remote_of(fd);
	FILE *f;
	REAL(fdopen);
	REAL(close);

	if (r < 0)
		return real_fdopen(fd, mode);
	f = fopencookie((void *)(intptr_t)r, mode, io);
	if (f) {
		fdmap[fd].remote = 0;
		real_close(fd);
	}
	return f;
}

/* ---- stat ------------------------------------------------------------------ */

static int remote_stat(const char *path, struct stat *st, int nofollow)
{
	struct statx sx;
	size_t got;
	long r;

	r = call(CTL_STAT, nofollow ? AT_SYMLINK_NOFOLLOW : 0, 0, 0, 0, path,
		 strlen(path) + 1, &sx, sizeof(sx), &got, NULL);
	if (r < 0)
		return ret_errno(r);
	if (!st)
		return 0;
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st->st_ino = sx.stx_ino;
	st->st_mode = sx.stx_mode;
	st->st_nlink = sx.stx_nlink;
	st->st_uid = sx.stx_uid;
	st->st_gid = sx.stx_gid;
	st->st_size = sx.stx_size;
	st->st_blksize = sx.stx_blksize;
	st->st_blocks = sx.stx_blocks;
	st->st_atim.tv_sec = sx.stx_atime.tv_sec;
	st->st_atim.tv_nsec = sx.stx_atime.tv_nsec;
	st->st_mtim.tv_sec = sx.stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = sx.stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = sx.stx_ctime.tv_nsec;
	return 0;
}

/*
 * stat and lstat (nofollow 1), and their 64 twins (st_type struct stat64,
 * the same layout here): a kernel path's answer comes from remote_stat.
 */
#define PATH_STAT(name, st_type, nofollow)				\
API int name(const char *path, st_type *st)				\
{									\
	REAL(name);							\
									\
	return kernel_path(path) ?					\
		remote_stat(path, (struct stat *)st, nofollow) :	\
		real_##name(path, st);					\
}

PATH_STAT(stat, struct stat, 0)
PATH_STAT(stat64, struct stat64, 0)
PATH_STAT(lstat, struct stat, 1)
PATH_STAT(lstat64, struct stat64, 1)

/* fstatat and fstatat64: an absolute kernel path, as PATH_STAT. */
#define AT_STAT(name, st_type)						\
API int name(int dirfd, const char *path, st_type *st, int flags)	\
{									\
	REAL(name);							\
									\
	if (path[0] == '/' && kernel_path(path))			\
		return remote_stat(path, (struct stat *)st,		\
				   flags & AT_SYMLINK_NOFOLLOW);	\
	return real_##name(dirfd, path, st, flags);			\
}

AT_STAT(fstatat, struct stat)
AT_STAT(fstatat64, struct stat64)

API int access(const char *path, int mode)
{
	REAL(access);

	return kernel_path(path) ? remote_stat(path, NULL, 0) :
		real_access(path, mode);
}

/* The kernel's paths are taken as they are spelt (after a check they exist). */
API char *realpath(const char *path, char *resolved)
{
	REAL(realpath);

	if (!kernel_path(path))
		return real_realpath(path, resolved);
	if (remote_stat(path, NULL, 0))
		return NULL;
	if (strlen(path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (!resolved)
		return strdup(path);
	return strcpy(resolved, path);
}

/* ---- directories ------------------------------------------------------------ */

#define DIR_MAGIC 0x6c6b6c44	/* "Dlkl" */

struct kdir {
	uint32_t magic;
	int fd;			/* the placeholder */
	size_t pos, len;
	struct dirent ent;
	struct dirent64 ent64;
	char buf[32768];
	struct kdir *next;
};

static struct kdir *kdirs;	/* lock held */

static struct kdir *kdir_of(void *d)
{
	struct kdir *k;

	pthread_mutex_lock(&lock);
	for (k = kdirs; k && (void *)k != d; k = k->next)
		;
	pthread_mutex_unlock(&lock);
	return k;
}

static DIR *kdir_new(int fd)
{
	struct kdir *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->magic = DIR_MAGIC;
	k->fd = fd;
	pthread_mutex_lock(&lock);
	k->next = kdirs;
	kdirs = k;
	pthread_mutex_unlock(&lock);
	return (DIR *)k;
}

API DIR *opendir(const char *path)
{
	DIR *d;
	int fd;
	REAL(opendir);

	if (!kernel_path(path))
		return real_opendir(path);
	fd = remote_open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	d = kdir_new(fd);
	if (!d)
		close(fd);
	return d;
}

API DIR *fdopendir(int fd)
{
	REAL(fdopendir);

	return remote_of(fd) >= 0 ? kdir_new(fd) : real_fdopendir(fd);
}

/* The next linux_dirent64 record of k, or NULL at the end. */
static const char *kdir_next(struct kdir *k)
{
	const char *rec;

	if (k->pos >= k->len) {
		size_t got;
		long r = call(CTL_GETDENTS, remote_of(k->fd), sizeof(k->buf), 0,
			      0, NULL, 0, k->buf, sizeof(k->buf), &got, NULL);

		if (r <= 0) {
			if (r < 0)
				errno = -r;
			return NULL;
		}
		k->pos = 0;
		k->len = got;
	}
	rec = k->buf + k->pos;
	k->pos += *(const uint16_t *)(rec + 16);
	return rec;
}

static void fill_dirent(const char *rec, uint64_t *ino, int64_t *off,
			unsigned short *reclen, unsigned char *type, char *name,
			size_t namecap)
{
	uint16_t len = *(const uint16_t *)(rec + 16);

	memcpy(ino, rec, 8);
	memcpy(off, rec + 8, 8);
	*type = rec[18];
	*reclen = len;
	snprintf(name, namecap, "%.*s", (int)(len - 19), rec + 19);
}

/*
 * readdir (ent is k->ent) and readdir64 (k->ent64): the next record of
 * a kernel directory in ent, or NULL at the end.
 */
#define KDIR_READ(k, ent) ({						\
	const char *rec_ = kdir_next(k);				\
	uint64_t ino_;							\
	int64_t off_;							\
									\
	if (rec_) {							\
		fill_dirent(rec_, &ino_, &off_, &(ent).d_reclen,	\
			    &(ent).d_type, (ent).d_name,		\
			    sizeof((ent).d_name));			\
		(ent).d_ino = ino_;					\
		(ent).d_off = off_;					\
	}								\
	rec_ ? &(ent) : NULL;						\
})

API struct dirent *readdir(DIR *d)
{
	struct kdir *k = kdir_of(d);
	REAL(readdir);

	return k ? KDIR_READ(k, k->ent) : real_readdir(d);
}

API struct dirent64 *readdir64(DIR *d)
{
	struct kdir *k = kdir_of(d);
	REAL(readdir64);

	return k ? KDIR_READ(k, k->ent64) : real_readdir64(d);
}

API int closedir(DIR *d)
{
	struct kdir *k = kdir_of(d), **p;
	int fd;
	REAL(closedir);

	if (!k)
		return real_closedir(d);
	pthread_mutex_lock(&lock);
	for (p = &kdirs; *p != k; p = &(*p)->next)
		;
	*p = k->next;
	pthread_mutex_unlock(&lock);
	fd = k->fd;
	free(k);
	return close(fd);
}

API int dirfd(DIR *d)
{
	struct kdir *k = kdir_of(d);
	REAL(dirfd);

	return k ? k->fd : real_dirfd(d);
}

API void rewinddir(DIR *d)
{
	struct kdir *k = kdir_of(d);
	REAL(rewinddir);

	if (!k) {
		real_rewinddir(d);
		return;
	}
	call(CTL_LSEEK, remote_of(k->fd), 0, SEEK_SET, 0, NULL, 0, NULL, 0,
	     NULL, NULL);
	k->pos = k->len = 0;
}

/* ---- sockets ------------------------------------------------------------------ */

static int forwarded_family(int domain)
{
	return domain == AF_NETLINK || domain == AF_INET ||
		domain == AF_INET6 || domain == AF_PACKET;
}

API int socket(int domain, int type, int protocol)
{
	long r;
	int fd;
	REAL(socket);

	if (ctl < 0 || !forwarded_family(domain))
		return real_socket(domain, type, protocol);
	/* The kernel socket blocks; a non-blocking one's calls say MSG_DONTWAIT. */
	r = call(CTL_SOCKET, domain, type & ~(SOCK_CLOEXEC | SOCK_NONBLOCK),
		 protocol, 0, NULL, 0, NULL, 0, NULL, NULL);
	if (r < 0)
		return ret_errno(r);
	fd = placeholder(r, domain == AF_NETLINK ? FD_NETLINK : FD_SOCKET,
			 type & SOCK_CLOEXEC);
	if (fd >= 0)
		fdmap[fd].nonblock = !!(type & SOCK_NONBLOCK);
	return fd;
}

static int addr_call(int op, int r, const struct sockaddr *sa, socklen_t len)
{
	if (len > CTL_ADDR_MAX)
		return ret_errno(-EINVAL);
	return ret_errno(call(op, r, 0, 0, 0, sa, len, NULL, 0, NULL, NULL));
}

API int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r = remote_of(fd);
	REAL(bind);

	return r < 0 ? real_bind(fd, sa, len) : addr_call(CTL_BIND, r, sa, len);
}

API int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int r = remote_of(fd);
	REAL(connect);

	if (r < 0)
		return real_connect(fd, sa, len);
	if (len > CTL_ADDR_MAX)
		return ret_errno(-EINVAL);
	return ret_errno(call(CTL_CONNECT, r, fdmap[fd].nonblock, 0, 0, sa, len,
			      NULL, 0, NULL, NULL));
}

static int name_call(int r, struct sockaddr *sa, socklen_t *len, int peer)
{
	int64_t ret[3];
	size_t cap = *len > CTL_ADDR_MAX ? CTL_ADDR_MAX : *len;
	long res = call(CTL_GETSOCKNAME, r, cap, peer, 0, NULL, 0, sa, cap,
			NULL, ret);

	if (res < 0)
		return ret_errno(res);
	*len = ret[0];
	return 0;
}

API int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	int r = remote_of(fd);
	REAL(getsockname);

	return r < 0 ? real_getsockname(fd, sa, len) : name_call(r, sa, len, 0);
}

API int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	int r = remote_of(fd);
	REAL(getpeername);

	return r < 0 ? real_getpeername(fd, sa, len) : name_call(r, sa, len, 1);
}

API int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int r = remote_of(fd);
	REAL(setsockopt);

	if (r < 0)
		return real_setsockopt(fd, level, name, val, len);
	if (len > 4096)
		return ret_errno(-EINVAL);
	return ret_errno(call(CTL_SETSOCKOPT, r, level, name, 0, val, len, NULL,
			      0, NULL, NULL));
}

API int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	int r = remote_of(fd);
	int64_t ret[3];
	size_t cap;
	long res;
	REAL(getsockopt);

	if (r < 0)
		return real_getsockopt(fd, level, name, val, len);
	cap = *len > 4096 ? 4096 : *len;
	res = call(CTL_GETSOCKOPT, r, level, name, cap, NULL, 0, val, cap, NULL,
		   ret);
	if (res < 0)
		return ret_errno(res);
	*len = ret[0];
	return 0;
}

static ssize_t remote_sendto(int r, const void *buf, size_t n, int flags,
			     const struct sockaddr *sa, socklen_t alen)
{
	char *msg;
	long res;

	if (!sa)
		alen = 0;
	if (alen > CTL_ADDR_MAX || n > CTL_MAX_DATA - CTL_ADDR_MAX)
		return ret_errno(-EMSGSIZE);
	msg = malloc(alen + n + 1);
	if (!msg)
		return ret_errno(-ENOMEM);
	memcpy(msg, sa, alen);
	memcpy(msg + alen, buf, n);
	res = call(CTL_SENDTO, r, flags, alen, 0, msg, alen + n, NULL, 0, NULL,
		   NULL);
	free(msg);
	return ret_errno(res);
}

API ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	int r = remote_of(fd);
	REAL(send);

	return r < 0 ? real_send(fd, buf, n, flags) :
		remote_sendto(r, buf, n, io_flags(fd, flags), NULL, 0);
}

API ssize_t sendto(int fd, const void *buf, size_t n, int flags,
		   const struct sockaddr *sa, socklen_t alen)
{
	int r = remote_of(fd);
	REAL(sendto);

	return r < 0 ? real_sendto(fd, buf, n, flags, sa, alen) :
		remote_sendto(r, buf, n, io_flags(fd, flags), sa, alen);
}

API ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	int r = remote_of(fd);
	size_t i, n = 0;
	ssize_t res;
	char *flat;
	REAL(sendmsg);

	if (r < 0)
		return real_sendmsg(fd, m, flags);
	if (m->msg_controllen)
		return ret_errno(-EOPNOTSUPP);
	for (i = 0; i < m->msg_iovlen; i++)
		n += m->msg_iov[i].iov_len;
	if (n > CTL_MAX_DATA)
		return ret_errno(-EMSGSIZE);
	flat = malloc(n + 1);
	if (!flat)
		return ret_errno(-ENOMEM);
	for (i = 0, n = 0; i < m->msg_iovlen; i++) {
		memcpy(flat + n, m->msg_iov[i].iov_base, m->msg_iov[i].iov_len);
		n += m->msg_iov[i].iov_len;
	}
	res = remote_sendto(r, flat, n, io_flags(fd, flags), m->msg_name,
			    m->msg_namelen);
	free(flat);
	return res;
}

/* Receive into iov; the kernel's length (it may exceed cap: MSG_TRUNC). */
static ssize_t remote_recv(int r, const struct iovec *iov, size_t cnt,
			   int flags, struct sockaddr *sa, socklen_t *alen,
			   int *msg_flags)
{
	size_t i, cap = 0, got, acap = sa && alen ? *alen : 0, off;
	int64_t ret[3];
	char *buf;
	long res;

	for (i = 0; i < cnt; i++)
		cap += iov[i].iov_len;
	if (cap > CTL_MAX_DATA - CTL_ADDR_MAX)
		cap = CTL_MAX_DATA - CTL_ADDR_MAX;
	if (acap > CTL_ADDR_MAX)
		acap = CTL_ADDR_MAX;
	buf = malloc(acap + cap + 1);
	if (!buf)
		return ret_errno(-ENOMEM);
	res = call(CTL_RECVFROM, r, flags, cap, acap, NULL, 0, buf, acap + cap,
		   &got, ret);
	if (res >= 0) {
		if (acap) {
			memcpy(sa, buf, acap);
			*alen = ret[0];
		} else if (alen) {
			*alen = 0;
		}
		if (msg_flags)
			*msg_flags = ret[1];
		got = got > acap ? got - acap : 0;
		for (i = 0, off = 0; i < cnt && off < got; i++) {
			size_t k = iov[i].iov_len < got - off ? iov[i].iov_len :
				got - off;

			memcpy(iov[i].iov_base, buf + acap + off, k);
			off += k;
		}
	}
	free(buf);
	return ret_errno(res);
}

/* recvmsg on a netlink socket: from the batch, refilled in one call. */
static ssize_t batch_recv(int fd, int r, const struct iovec *iov, size_t cnt,
			  int flags, struct sockaddr *sa, socklen_t *alen,
			  int *msg_flags)
{
	struct batch *b = &batches[fd];
	const struct ctl_dgram *d;
	const uint8_t *name, *data;
	size_t i, cap = 0, off, take;

	if (b->pos >= b->len) {
		size_t got;
		long n;

		if (!b->buf)
			b->buf = malloc(CTL_MAX_DATA);
		if (!b->buf)
			return remote_recv(r, iov, cnt, flags, sa, alen, msg_flags);
		n = call(CTL_RECVBATCH, r, flags & MSG_DONTWAIT, 64, 0, NULL, 0,
			 b->buf, CTL_MAX_DATA, &got, NULL);
		if (n < 0)
			return ret_errno(n);
		if (n == 0)	/* one datagram too big to batch */
			return remote_recv(r, iov, cnt, flags, sa, alen, msg_flags);
		b->len = got;
		b->pos = 0;
	}
	d = (const struct ctl_dgram *)(b->buf + b->pos);
	if (b->len - b->pos < sizeof(*d) || d->namelen > CTL_ADDR_MAX ||
	    CTL_DGRAM_SPACE(d->namelen, d->len) > b->len - b->pos) {
		b->len = b->pos = 0;	/* not what the server sends: drop it */
		return ret_errno(-EPROTO);
	}
	name = (const uint8_t *)(d + 1);
	data = name + d->namelen;
	for (i = 0; i < cnt; i++)
		cap += iov[i].iov_len;
	take = d->len < cap ? d->len : cap;
	for (i = 0, off = 0; i < cnt && off < take; i++) {
		size_t k = iov[i].iov_len < take - off ? iov[i].iov_len : take - off;

		memcpy(iov[i].iov_base, data + off, k);
		off += k;
	}
	if (sa && alen) {
		memcpy(sa, name, *alen < d->namelen ? *alen : d->namelen);
		*alen = d->namelen;
	} else if (alen) {
		*alen = 0;
	}
	if (msg_flags)
		*msg_flags = d->flags | (d->len > cap ? MSG_TRUNC : 0);
	if (!(flags & MSG_PEEK))
		b->pos += CTL_DGRAM_SPACE(d->namelen, d->len);
	return flags & MSG_TRUNC ? (ssize_t)d->len : (ssize_t)take;
}

static ssize_t any_recv(int fd, int r, const struct iovec *iov, size_t cnt,
			int flags, struct sockaddr *sa, socklen_t *alen,
			int *msg_flags)
{
	if (fdmap[fd].kind == FD_NETLINK)
		return batch_recv(fd, r, iov, cnt, flags, sa, alen, msg_flags);
	return remote_recv(r, iov, cnt, flags, sa, alen, msg_flags);
}

API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct iovec iov = { buf, n };
	int r = remote_of(fd);
	REAL(recv);

	return r < 0 ? real_recv(fd, buf, n, flags) :
		any_recv(fd, r, &iov, 1, io_flags(fd, flags), NULL, NULL, NULL);
}

API ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
		     struct sockaddr *sa, socklen_t *alen)
{
	struct iovec iov = { buf, n };
	int r = remote_of(fd);
	REAL(recvfrom);

	return r < 0 ? real_recvfrom(fd, buf, n, flags, sa, alen) :
		any_recv(fd, r, &iov, 1, io_flags(fd, flags), sa, alen, NULL);
}

API ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	int r = remote_of(fd);
	socklen_t alen;
	ssize_t res;
	REAL(recvmsg);

	if (r < 0)
		return real_recvmsg(fd, m, flags);
	alen = m->msg_name ? m->msg_namelen : 0;
	res = any_recv(fd, r, m->msg_iov, m->msg_iovlen, io_flags(fd, flags),
		       m->msg_name, &alen, &m->msg_flags);
	if (res >= 0) {
		m->msg_namelen = alen;
		m->msg_controllen = 0;
	}
	return res;
}

/* O_NONBLOCK of a forwarded fd is kept here (io_flags), and on the placeholder. */
static int fcntl_common(int fd, int cmd, long arg, int big)
{
	REAL(fcntl);
	REAL(fcntl64);

	if (remote_of(fd) >= 0 && cmd == F_SETFL)
		fdmap[fd].nonblock = !!(arg & O_NONBLOCK);
	return big && real_fcntl64 ? real_fcntl64(fd, cmd, arg) :
		real_fcntl(fd, cmd, arg);
}

/* fcntl's arg: an int or a pointer, the same register (read as a long). */
API int fcntl(int fd, int cmd, ...)
{
	return fcntl_common(fd, cmd, OPTIONAL_ARG(cmd, long, 1), 0);
}

API int fcntl64(int fd, int cmd, ...)
{
	return fcntl_common(fd, cmd, OPTIONAL_ARG(cmd, long, 1), 1);
}

/* ifr_data points to the command's struct: it crosses as bytes, after the name. */
static int remote_ethtool(int r, void *arg)
{
	struct ifreq *ifr = arg;
	uint8_t *data = (uint8_t *)ifr->ifr_data, *msg;
	uint8_t head[16] = { 0 };
	size_t size;
	long res;

	memcpy(head, data, 4);
	size = ctl_ethtool_size(head, 4);
	if (!size) {
		/* A variable-size command: its header says how big. */
		memcpy(head, data, sizeof(head));
		size = ctl_ethtool_size(head, sizeof(head));
	}
	if (!size)
		return ret_errno(-EOPNOTSUPP);
	msg = malloc(16 + size);
	if (!msg)
		return ret_errno(-ENOMEM);
	memcpy(msg, ifr->ifr_name, 16);
	memcpy(msg + 16, data, size);
	res = call(CTL_ETHTOOL, r, 0, 0, 0, msg, 16 + size, msg, 16 + size, NULL,
		   NULL);
	if (res >= 0)
		memcpy(data, msg + 16, size);
	free(msg);
	return ret_errno(res);
}

API int ioctl(int fd, unsigned long request, ...)
{
	int r = remote_of(fd);
	void *arg = OPTIONAL_ARG(request, void *, 1);
	unsigned int size;
	REAL(ioctl);

	if (r < 0)
		return real_ioctl(fd, request, arg);
	if (request == FIONBIO) {	/* kept here: see io_flags */
		fdmap[fd].nonblock = !!*(int *)arg;
		return 0;
	}
	if (request == 0x8946)	/* SIOCETHTOOL */
		return remote_ethtool(r, arg);
	size = ctl_ioctl_size(request);
	if (!size)
		return ret_errno(-EOPNOTSUPP);
	return ret_errno(call(CTL_IOCTL, r, request, 0, 0, arg, size, arg, size,
			      NULL, NULL));
}

/* ---- poll ---------------------------------------------------------------------- */

static int remote_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct ctl_pollfd p[CTL_POLL_MAX_FDS] = { { 0 } };
	nfds_t i, k = 0;
	size_t got;
	long res;

	for (i = 0; i < n; i++) {
		if (remote_of(fds[i].fd) < 0)
			continue;
		if (k == CTL_POLL_MAX_FDS)
			return ret_errno(-EINVAL);
		p[k].fd = remote_of(fds[i].fd);
		p[k].events = fds[i].events;
		p[k++].revents = 0;
	}
	for (i = 0; i < n; i++)
		if (batch_ready(fds[i].fd))
			timeout = 0;	/* something is readable already */
	res = call(CTL_POLL, timeout, 0, 0, 0, p, k * sizeof(*p), p, sizeof(p),
		   &got, NULL);
	if (res < 0)
		return ret_errno(res);
	for (i = 0, k = 0, res = 0; i < n; i++) {
		if (remote_of(fds[i].fd) < 0)
			continue;
		fds[i].revents = p[k++].revents;
		if (batch_ready(fds[i].fd) && (fds[i].events & POLLIN))
			fds[i].revents |= POLLIN;
		res += fds[i].revents != 0;
	}
	return res;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

API int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	nfds_t i, remote = 0;
	long long deadline;
	REAL(poll);

	for (i = 0; i < n; i++)
		remote += remote_of(fds[i].fd) >= 0;
	if (!remote)
		return real_poll(fds, n, timeout);
	deadline = timeout < 0 ? -1 : now_ms() + timeout;
	for (;;) {
		long long left = deadline < 0 ? CTL_POLL_MAX_MS : deadline - now_ms();
		int slice, rr, lr = 0;

		if (left < 0)
			left = 0;
		/* Only kernel fds: one call; a mix: short turns at each side. */
		slice = remote == n ? (int)(left > CTL_POLL_MAX_MS ?
					   CTL_POLL_MAX_MS : left) : 0;
		rr = remote_poll(fds, n, slice);
		if (rr < 0)
			return rr;
		if (remote < n) {
			struct pollfd local[n];

			for (i = 0; i < n; i++) {
				local[i] = fds[i];
				if (remote_of(fds[i].fd) >= 0)
					local[i].fd = -1;
			}
			lr = real_poll(local, n, rr ? 0 : (int)(left < 10 ? left : 10));
			if (lr < 0)
				return lr;
			for (i = 0; i < n; i++)
				if (remote_of(fds[i].fd) < 0)
					fds[i].revents = local[i].revents;
		}
		if (rr + lr > 0 || (deadline >= 0 && now_ms() >= deadline))
			return rr + lr;
	}
}
