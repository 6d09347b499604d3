/*
 * From a device's register window to the kernel's ifindex: /proc/iomem
 * names the platform device that claimed the window (virtio-mmio.N,
 * whoever attached it), its sysfs folder holds the virtio device, whose
 * net/ folder holds the interface.  Every step is a kernel syscall.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/fcntl.h>
#include <lkl/linux/fcntl.h>

#include "net_ifindex.h"

#define PATH_LEN	256

/* struct linux_dirent64 */
struct dirent64 {
	uint64_t ino;
	int64_t off;
	uint16_t reclen;
	uint8_t type;
	char name[];
};

static long sys(long nr, long a, long b, long c, long d)
{
	long params[6] = { a, b, c, d, 0, 0 };

	return lkl_syscall(nr, params);
}

static long kopen(const char *path, int flags)
{
	return sys(LKL__NR_openat, LKL_AT_FDCWD, (long)path,
		   flags | LKL_O_CLOEXEC, 0);
}

/* Read a whole (small) kernel file into buf, NUL-terminated. */
static long read_file(const char *path, char *buf, size_t len)
{
	long fd = kopen(path, LKL_O_RDONLY), n, got = 0;

	if (fd < 0)
		return fd;
	while ((size_t)got < len - 1) {
		n = sys(LKL__NR_read, fd, (long)(buf + got), len - 1 - got, 0);
		if (n <= 0)
			break;
		got += n;
	}
	sys(LKL__NR_close, fd, 0, 0, 0);
	buf[got] = 0;
	return got;
}

/* The first entry of dir whose name starts with prefix ("" for any). */
static int find_entry(const char *dir, const char *prefix, char *out,
		      size_t len)
{
	char buf[4096];
	long fd = kopen(dir, LKL_O_RDONLY | LKL_O_DIRECTORY), n;
	int found = -ENOENT;

	if (fd < 0)
		return fd;
	while (found && (n = sys(LKL__NR_getdents64, fd, (long)buf,
				 sizeof(buf), 0)) > 0) {
		long off;

		for (off = 0; off < n && found;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);

			off += d->reclen;
			if (d->name[0] == '.' ||
			    strncmp(d->name, prefix, strlen(prefix)))
				continue;
			snprintf(out, len, "%s", d->name);
			found = 0;
		}
	}
	sys(LKL__NR_close, fd, 0, 0, 0);
	return found;
}

/*
 * A whole kernel file of any size, NUL-terminated, in a buffer to free
 * (/proc files say nothing of their size up front).
 */
static long read_all(const char *path, char **out)
{
	long fd = kopen(path, LKL_O_RDONLY), n;
	size_t cap = 4096, got = 0;
	char *buf = malloc(cap), *bigger;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			sys(LKL__NR_close, fd, 0, 0, 0);
		return fd < 0 ? fd : -ENOMEM;
	}
	while ((n = sys(LKL__NR_read, fd, (long)(buf + got), cap - 1 - got,
			0)) > 0) {
		got += n;
		if (got < cap - 1)
			continue;
		bigger = realloc(buf, cap * 2);
		if (!bigger) {
			n = -ENOMEM;
			break;
		}
		buf = bigger;
		cap *= 2;
	}
	sys(LKL__NR_close, fd, 0, 0, 0);
	if (n < 0) {
		free(buf);
		return n;
	}
	buf[got] = 0;
	*out = buf;
	return got;
}

/* The name of the resource that starts at base in /proc/iomem. */
static int iomem_owner(unsigned long base, char *out, size_t len)
{
	char *buf, *line, *save;
	int ret = -ENOENT;
	long n = read_all("/proc/iomem", &buf);

	if (n < 0)
		return n;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long start, end;
		char name[64];

		if (sscanf(line, " %lx-%lx : %63s", &start, &end, name) == 3 &&
		    start == base && !strncmp(name, "virtio-mmio.", 12)) {
			snprintf(out, len, "%s", name);
			ret = 0;
			break;
		}
	}
	free(buf);
	return ret;
}

int net_find_ifindex(unsigned long base)
{
	char pdev[64], vdev[64], ifname[64], path[PATH_LEN], num[32];
	int err;

	err = iomem_owner(base, pdev, sizeof(pdev));
	if (err)
		return err;
	snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s", pdev);
	err = find_entry(path, "virtio", vdev, sizeof(vdev));
	if (err)
		return err;
	snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s/%s/net",
		 pdev, vdev);
	err = find_entry(path, "", ifname, sizeof(ifname));
	if (err)
		return err;
	snprintf(path, sizeof(path), "/sys/class/net/%s/ifindex", ifname);
	if (read_file(path, num, sizeof(num)) <= 0)
		return -EIO;
	return atoi(num);
}
