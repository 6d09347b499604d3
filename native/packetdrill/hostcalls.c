/*
 * What packetdrill does on the host directly, sent to lkl instead.
 *
 * With this file in LD_PRELOAD its close, getsockopt and system take the
 * place of libc's in packetdrill: close and getsockopt on an lkl fd (a
 * number from PD_FD_BASE up, which no host fd has) go to the kernel; the
 * scripts' shell commands (in backticks) are run against the kernel when
 * they are among the few forms the kernel's packetdrill selftests use:
 *
 *   ./defaults.sh                       the selftests' sysctls, pfifo root
 *   sysctl [-q] [-e] [-w] key=value...  /proc/sys of the kernel
 *   ./set_sysctls.py /proc/sys/k=v...   the same, remembering old values
 *   /tmp/sysctl_restore_${PPID}.sh      ... which this restores
 *   tc qdisc add|replace dev D root K   an option-less root qdisc K
 *   grep S FILE... [| grep S]...        fixed strings over kernel files
 *
 * Anything else fails with status 127 and a message: these are not a
 * shell, and no command reaches the host's kernel.  The one exception
 * is packetdrill's own %{ }% code runner (python3), which only reads a
 * file packetdrill wrote.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <lkl/lkl.h>
#include <lkl/asm/unistd.h>

#include "pd.h"

#define MAX_WORDS	64
#define MAX_SAVED	64
#define EXIT_STATUS(n)	((n) << 8)
#define NOT_HERE	EXIT_STATUS(127)

static int (*host_close)(int);
static int (*host_getsockopt)(int, int, int, void *, socklen_t *);
static int (*host_system)(const char *);

/* set_sysctls.py's restore list. */
static struct {
	char name[128];
	char value[256];
} saved[MAX_SAVED];
static int nsaved;

static void resolve(void)
{
	if (!host_close) {
		host_system = dlsym(RTLD_NEXT, "system");
		host_getsockopt = dlsym(RTLD_NEXT, "getsockopt");
		__atomic_store_n(&host_close, dlsym(RTLD_NEXT, "close"),
				 __ATOMIC_RELEASE);
	}
}

int close(int fd)
{
	long r;

	if (fd >= PD_FD_BASE && pd_ready()) {
		r = pd_sys1(LKL__NR_close, fd - PD_FD_BASE);
		if (r < 0) {
			errno = -r;
			return -1;
		}
		return 0;
	}
	resolve();
	return host_close(fd);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	long r;

	if (fd >= PD_FD_BASE && pd_ready()) {
		socklen_t asked = len ? *len : 0;
		int tcp_info = level == IPPROTO_TCP && name == TCP_INFO && val;

		/*
		 * packetdrill's %{ }% checks insist on its own struct
		 * tcp_info, which is newer than 6.12's: the fields 6.12
		 * does not have read as zero, as for any older kernel.
		 */
		if (tcp_info)
			memset(val, 0, asked);
		r = pd_sys(LKL__NR_getsockopt, fd - PD_FD_BASE, level, name,
			   (long)val, (long)len, 0);
		if (r < 0) {
			errno = -r;
			return -1;
		}
		if (tcp_info)
			*len = asked;
		return 0;
	}
	resolve();
	return host_getsockopt(fd, level, name, val, len);
}

/* ---- the command forms ------------------------------------------------- */

/* Split a line into words; '...' and "..." group.  Returns the count. */
static int split(char *line, char **w)
{
	int n = 0;
	char *p = line, *out;

	while (*p && n < MAX_WORDS) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		w[n++] = out = p;
		while (*p && *p != ' ' && *p != '\t') {
			if (*p == '\'' || *p == '"') {
				char q = *p++;

				while (*p && *p != q)
					*out++ = *p++;
				if (*p)
					p++;
			} else {
				*out++ = *p++;
			}
		}
		if (*p)
			p++;
		*out = 0;
	}
	/* Output redirections change nothing here: nothing is printed. */
	while (n > 0 && (!strcmp(w[n - 1], "2>&1") ||
			 !strcmp(w[n - 1], ">/dev/null") ||
			 !strcmp(w[n - 1], "/dev/null") ||
			 !strcmp(w[n - 1], ">")))
		n--;
	return n;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int cmd_sysctl(int n, char **w)
{
	int i, ignore_missing = 0, err;

	for (i = 1; i < n; i++) {
		char *eq = strchr(w[i], '=');

		if (!strcmp(w[i], "-q") || !strcmp(w[i], "-w"))
			continue;
		if (!strcmp(w[i], "-e")) {
			ignore_missing = 1;
			continue;
		}
		if (!eq) {
			char val[256];

			err = pd_sysctl_read(w[i], val, sizeof(val));
			if (err < 0)
				return EXIT_STATUS(1);
			printf("%s = %s\n", w[i], val);
			continue;
		}
		*eq = 0;
		err = pd_sysctl_write(w[i], eq + 1);
		if (err && !(ignore_missing && err == -ENOENT)) {
			fprintf(stderr, "sysctl (lkl): %s: %s\n", w[i],
				lkl_strerror(err));
			return EXIT_STATUS(255);
		}
	}
	return 0;
}

static int cmd_set_sysctls(int n, char **w)
{
	int i, err;

	for (i = 1; i < n; i++) {
		char *eq = strchr(w[i], '=');

		if (!eq || nsaved == MAX_SAVED)
			return EXIT_STATUS(1);
		*eq = 0;
		snprintf(saved[nsaved].name, sizeof(saved[0].name), "%s", w[i]);
		if (pd_sysctl_read(w[i], saved[nsaved].value,
				   sizeof(saved[0].value)) < 0)
			return EXIT_STATUS(1);
		nsaved++;
		err = pd_sysctl_write(w[i], eq + 1);
		if (err) {
			fprintf(stderr, "set_sysctls (lkl): %s: %s\n", w[i],
				lkl_strerror(err));
			return EXIT_STATUS(1);
		}
	}
	return 0;
}

static int cmd_restore(void)
{
	while (nsaved > 0) {
		nsaved--;
		if (pd_sysctl_write(saved[nsaved].name, saved[nsaved].value))
			return EXIT_STATUS(1);
	}
	return 0;
}

static int cmd_tc(int n, char **w)
{
	if (n == 7 && !strcmp(w[1], "qdisc") &&
	    (!strcmp(w[2], "add") || !strcmp(w[2], "replace")) &&
	    !strcmp(w[3], "dev") && !strcmp(w[5], "root"))
		return pd_set_root_qdisc(w[6]) ? EXIT_STATUS(2) : 0;
	return NOT_HERE;
}

/*
 * grep S FILE... [| grep S]...: the first grep's lines (prefixed with
 * their file's name when there are several, as grep does), kept by
 * every later one.  Status 0 if a line is left, else 1.
 */
static int cmd_grep_pipeline(char *line)
{
	static char content[1 << 18];
	char *stages[8], *save = NULL, *s;
	char *w[MAX_WORDS];
	char *pattern[8];
	int nstages = 0, n, i, j, found = 0;

	for (s = strtok_r(line, "|", &save); s && nstages < 8;
	     s = strtok_r(NULL, "|", &save))
		stages[nstages++] = s;
	for (i = 1; i < nstages; i++) {
		n = split(stages[i], w);
		if (n != 2 || strcmp(w[0], "grep"))
			return NOT_HERE;
		pattern[i] = w[1];
	}
	n = split(stages[0], w);
	if (n < 3 || strcmp(w[0], "grep") || w[1][0] == '-')
		return NOT_HERE;
	pattern[0] = w[1];
	for (j = 2; j < n; j++) {
		char *l, *lsave = NULL;

		if (pd_read_file(w[j], content, sizeof(content)) < 0)
			continue;
		for (l = strtok_r(content, "\n", &lsave); l;
		     l = strtok_r(NULL, "\n", &lsave)) {
			char out[1024];

			snprintf(out, sizeof(out), "%s%s%s", n > 3 ? w[j] : "",
				 n > 3 ? ":" : "", l);
			if (!strstr(l, pattern[0]))
				continue;
			for (i = 1; i < nstages && strstr(out, pattern[i]); i++)
				;
			if (i == nstages) {
				puts(out);
				found = 1;
			}
		}
	}
	fflush(stdout);
	return found ? 0 : EXIT_STATUS(1);
}

static int run_line(char *line)
{
	char copy[4096];
	char *w[MAX_WORDS];
	int n;

	snprintf(copy, sizeof(copy), "%s", line);
	if (strchr(line, '|'))
		return cmd_grep_pipeline(line);
	n = split(line, w);
	if (n == 0)
		return 0;
	if (!strcmp(base(w[0]), "defaults.sh") && n == 1)
		return pd_apply_defaults() ? EXIT_STATUS(1) : 0;
	if (!strcmp(w[0], "sysctl"))
		return cmd_sysctl(n, w);
	if (!strcmp(base(w[0]), "set_sysctls.py"))
		return cmd_set_sysctls(n, w);
	if (!strncmp(w[0], "/tmp/sysctl_restore_", 20) && n == 1)
		return cmd_restore();
	if (!strcmp(w[0], "tc"))
		return cmd_tc(n, w);
	if (!strcmp(w[0], "grep"))
		return cmd_grep_pipeline(copy);
	return NOT_HERE;
}

int pd_run_command(const char *cmd)
{
	char *text = strdup(cmd), *line, *p, *save = NULL;
	int status = 0;

	if (!text)
		return EXIT_STATUS(1);
	/* Backslash-newline continues a line. */
	for (p = text; (p = strstr(p, "\\\n")); )
		p[0] = p[1] = ' ';
	for (line = strtok_r(text, "\n;", &save); line;
	     line = strtok_r(NULL, "\n;", &save)) {
		status = run_line(line);
		if (status == NOT_HERE)
			fprintf(stderr, "lkl-packetdrill: no lkl path for the "
				"shell command `%s`\n", line);
		if (status)
			break;
	}
	free(text);
	return status;
}

int system(const char *cmd)
{
	char first[64];

	resolve();
	if (!cmd)
		return host_system(cmd);
	/* packetdrill's own %{ }% runner: python3 over a file it wrote. */
	if (sscanf(cmd, "%63s", first) == 1 &&
	    !strncmp(base(first), "python", 6))
		return host_system(cmd);
	if (!pd_ready()) {
		fprintf(stderr, "lkl-packetdrill: no kernel for `%s`\n", cmd);
		return NOT_HERE;
	}
	return pd_run_command(cmd);
}
