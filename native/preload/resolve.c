/*
 * Name resolution on the kernel's stack.  glibc's resolver sends its
 * queries through its own internal socket calls, which no preload can
 * interpose, so getaddrinfo & co. are replaced: numeric addresses,
 * localhost, /etc/hosts, then DNS (A and AAAA over the kernel's UDP) to
 * LKL_NAMESERVER, by default the host's /etc/resolv.conf nameservers.
 * No search domains, no reverse (PTR) queries: getnameinfo answers from
 * /etc/hosts or numerically.  if_nametoindex/if_indextoname ask the
 * kernel too.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <lkl/asm/unistd.h>
#include <lkl/asm-generic/errno.h>
#include <lkl/asm-generic/poll.h>
#include <lkl/linux/socket_abi.h>
#include <lkl/linux/time_types.h>

#include "preload.h"

extern struct preload_config preload_cfg;

#define MAX_FOUND 16
#define DNS_TIMEOUT_MS 2000
#define DNS_ROUNDS 2

struct found {
	int n;
	int family[MAX_FOUND];
	unsigned char addr[MAX_FOUND][16];
};

static void found_add(struct found *f, int family, const void *addr)
{
	int i, len = family == AF_INET ? 4 : 16;

	for (i = 0; i < f->n; i++)
		if (f->family[i] == family && !memcmp(f->addr[i], addr, len))
			return;
	if (f->n == MAX_FOUND)
		return;
	f->family[f->n] = family;
	memcpy(f->addr[f->n++], addr, len);
}

static int wants(int want, int family)
{
	return want == AF_UNSPEC || want == family;
}

static int numeric(const char *name, int want, struct found *f)
{
	unsigned char a[16];

	if (wants(want, AF_INET) && inet_pton(AF_INET, name, a) == 1) {
		found_add(f, AF_INET, a);
		return 1;
	}
	if (wants(want, AF_INET6) && inet_pton(AF_INET6, name, a) == 1) {
		found_add(f, AF_INET6, a);
		return 1;
	}
	return 0;
}

static void hosts_file(const char *name, int want, struct found *f)
{
	char line[512], *tok, *save, *addr;
	unsigned char a[16];
	FILE *fp = fopen("/etc/hosts", "re");

	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		char *hash = strchr(line, '#');

		if (hash)
			*hash = 0;
		addr = strtok_r(line, " \t\r\n", &save);
		if (!addr)
			continue;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)))
			if (!strcasecmp(tok, name))
				break;
		if (!tok)
			continue;
		if (wants(want, AF_INET) && inet_pton(AF_INET, addr, a) == 1)
			found_add(f, AF_INET, a);
		else if (wants(want, AF_INET6) &&
			 inet_pton(AF_INET6, addr, a) == 1)
			found_add(f, AF_INET6, a);
	}
	fclose(fp);
}

/* ---- DNS ------------------------------------------------------------------------ */

static int dns_query(unsigned char *q, const char *name, int type,
		     unsigned id)
{
	const char *p = name;
	int n = 12;

	memset(q, 0, 12);
	q[0] = id >> 8;
	q[1] = id;
	q[2] = 0x01;		/* recursion desired */
	q[5] = 1;		/* one question */
	while (*p) {
		const char *dot = strchr(p, '.');
		int len = dot ? (int)(dot - p) : (int)strlen(p);

		if (len == 0 || len > 63 || n + len + 6 > 300)
			return -1;
		q[n++] = len;
		memcpy(q + n, p, len);
		n += len;
		p += len;
		if (*p == '.')
			p++;
	}
	q[n++] = 0;
	q[n++] = 0;
	q[n++] = type;
	q[n++] = 0;
	q[n++] = 1;		/* IN */
	return n;
}

/* Skip a (possibly compressed) name; the offset after it or -1. */
static int skip_name(const unsigned char *m, int len, int off)
{
	while (off < len) {
		if (m[off] == 0)
			return off + 1;
		if ((m[off] & 0xc0) == 0xc0)
			return off + 2 <= len ? off + 2 : -1;
		off += m[off] + 1;
	}
	return -1;
}

/* 1: answered (maybe empty), 0: name does not exist, -1: no answer. */
static int dns_parse(const unsigned char *m, int len, unsigned id,
		     struct found *f)
{
	int qd, an, off = 12, i;

	if (len < 12 || ((m[0] << 8) | m[1]) != (int)(id & 0xffff) ||
	    !(m[2] & 0x80))
		return -1;
	if ((m[3] & 0x0f) == 3)
		return 0;	/* NXDOMAIN */
	if ((m[3] & 0x0f) != 0)
		return -1;
	qd = (m[4] << 8) | m[5];
	an = (m[6] << 8) | m[7];
	for (i = 0; i < qd && off >= 0; i++) {
		off = skip_name(m, len, off);
		if (off >= 0)
			off += 4;
	}
	for (i = 0; i < an && off >= 0 && off < len; i++) {
		int type, rdlen;

		off = skip_name(m, len, off);
		if (off < 0 || off + 10 > len)
			return -1;
		type = (m[off] << 8) | m[off + 1];
		rdlen = (m[off + 8] << 8) | m[off + 9];
		off += 10;
		if (off + rdlen > len)
			return -1;
		if (type == 1 && rdlen == 4)
			found_add(f, AF_INET, m + off);
		else if (type == 28 && rdlen == 16)
			found_add(f, AF_INET6, m + off);
		off += rdlen;
	}
	return 1;
}

/* Ask one server for one type; as dns_parse, or -1 on timeout. */
static int dns_ask(const char *server, const char *name, int type,
		   struct found *f)
{
	struct sockaddr_in6 sa6;
	struct sockaddr_in sa4;
	struct sockaddr *sa;
	unsigned char q[320], r[1500];
	struct lkl__kernel_timespec ts;
	struct lkl_pollfd pfd;
	struct timespec now;
	int family, salen, qlen, ret = -1;
	unsigned id;
	long fd, n;

	memset(&sa4, 0, sizeof(sa4));
	memset(&sa6, 0, sizeof(sa6));
	if (inet_pton(AF_INET, server, &sa4.sin_addr) == 1) {
		sa4.sin_family = family = AF_INET;
		sa4.sin_port = htons(53);
		sa = (struct sockaddr *)&sa4;
		salen = sizeof(sa4);
	} else if (inet_pton(AF_INET6, server, &sa6.sin6_addr) == 1) {
		sa6.sin6_family = family = AF_INET6;
		sa6.sin6_port = htons(53);
		sa = (struct sockaddr *)&sa6;
		salen = sizeof(sa6);
	} else {
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	id = (unsigned)(now.tv_nsec ^ (now.tv_sec << 16) ^ type) & 0xffff;
	qlen = dns_query(q, name, type, id);
	if (qlen < 0)
		return 0;
	fd = ksys(LKL__NR_socket, family, LKL_SOCK_DGRAM, 0, 0, 0, 0);
	if (fd < 0)
		return -1;
	/* connect: only this server's answers reach the socket. */
	if (ksys(LKL__NR_connect, fd, (long)sa, salen, 0, 0, 0) < 0 ||
	    ksys(LKL__NR_sendto, fd, (long)q, qlen, 0, 0, 0) < 0)
		goto out;
	for (;;) {
		pfd.fd = (int)fd;
		pfd.events = LKL_POLLIN;
		pfd.revents = 0;
		ts.tv_sec = DNS_TIMEOUT_MS / 1000;
		ts.tv_nsec = (DNS_TIMEOUT_MS % 1000) * 1000000L;
		n = ksys(LKL__NR_ppoll, (long)&pfd, 1, (long)&ts, 0, 8, 0);
		if (n <= 0)
			break;
		n = ksys(LKL__NR_recvfrom, fd, (long)r, sizeof(r), 0, 0, 0);
		if (n < 0)
			break;
		ret = dns_parse(r, (int)n, id, f);
		if (ret >= 0)
			break;	/* else a stray or bad answer: wait on */
	}
out:
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	return ret;
}

/* EAI_* or 0; f filled. */
static int dns_lookup(const char *name, int want, struct found *f)
{
	int round, i, r4, r6, answered = 0, nx = 0;

	if (!preload_cfg.nns)
		return EAI_NONAME;
	for (round = 0; round < DNS_ROUNDS && !answered; round++)
		for (i = 0; i < preload_cfg.nns && !answered; i++) {
			const char *ns = preload_cfg.nameservers[i];

			r4 = wants(want, AF_INET) ? dns_ask(ns, name, 1, f) : 1;
			r6 = wants(want, AF_INET6) ?
			     dns_ask(ns, name, 28, f) : 1;
			if (r4 == 0 || r6 == 0)
				nx = 1;
			if (r4 >= 0 && r6 >= 0)
				answered = 1;
		}
	if (f->n)
		return 0;
	return answered || nx ? EAI_NONAME : EAI_AGAIN;
}

static int resolve(const char *name, int want, int flags, struct found *f)
{
	unsigned char lo6[16] = { [15] = 1 };
	unsigned char lo4[4] = { 127, 0, 0, 1 };

	memset(f, 0, sizeof(*f));
	if (numeric(name, want, f))
		return 0;
	if (flags & AI_NUMERICHOST)
		return EAI_NONAME;
	hosts_file(name, want, f);
	if (f->n)
		return 0;
	if (!strcasecmp(name, "localhost")) {
		if (wants(want, AF_INET))
			found_add(f, AF_INET, lo4);
		if (wants(want, AF_INET6))
			found_add(f, AF_INET6, lo6);
		return 0;
	}
	return dns_lookup(name, want, f);
}

/* ---- getaddrinfo ------------------------------------------------------------------ */

struct ai_block {
	struct addrinfo ai;	/* first: glibc's freeaddrinfo frees it too */
	struct sockaddr_in6 sa;
};

static int service_port(const char *service, const struct addrinfo *h,
			int *port)
{
	char *end;
	long n;
	struct servent se, *sp = NULL;
	char buf[1024];

	if (!service) {
		*port = 0;
		return 0;
	}
	n = strtol(service, &end, 10);
	if (*service && !*end) {
		if (n < 0 || n > 65535)
			return EAI_SERVICE;
		*port = (int)n;
		return 0;
	}
	if (h && (h->ai_flags & AI_NUMERICSERV))
		return EAI_NONAME;
	getservbyname_r(service, h && h->ai_socktype == SOCK_DGRAM ? "udp" :
			"tcp", &se, buf, sizeof(buf), &sp);
	if (!sp)
		return EAI_SERVICE;
	*port = ntohs(sp->s_port);
	return 0;
}

static struct addrinfo *ai_new(int family, const void *addr, int port,
			       int socktype, int protocol)
{
	struct ai_block *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->ai.ai_family = family;
	b->ai.ai_socktype = socktype;
	b->ai.ai_protocol = protocol;
	b->ai.ai_addr = (struct sockaddr *)&b->sa;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&b->sa;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, addr, 4);
		b->ai.ai_addrlen = sizeof(*sin);
	} else {
		b->sa.sin6_family = AF_INET6;
		b->sa.sin6_port = htons(port);
		memcpy(&b->sa.sin6_addr, addr, 16);
		b->ai.ai_addrlen = sizeof(b->sa);
	}
	return &b->ai;
}

EXPORT void freeaddrinfo(struct addrinfo *ai)
{
	while (ai) {
		struct addrinfo *next = ai->ai_next;

		free(ai->ai_canonname);
		free(ai);
		ai = next;
	}
}

EXPORT int getaddrinfo(const char *node, const char *service,
		       const struct addrinfo *hints, struct addrinfo **res)
{
	static const int types[][2] = {
		{ SOCK_STREAM, IPPROTO_TCP }, { SOCK_DGRAM, IPPROTO_UDP },
		{ SOCK_RAW, 0 },
	};
	unsigned char any6[16] = { 0 }, lo6[16] = { [15] = 1 };
	unsigned char any4[4] = { 0 }, lo4[4] = { 127, 0, 0, 1 };
	struct addrinfo *head = NULL, **tail = &head;
	int want = hints ? hints->ai_family : AF_UNSPEC;
	int flags = hints ? hints->ai_flags : 0;
	int socktype = hints ? hints->ai_socktype : 0;
	int protocol = hints ? hints->ai_protocol : 0;
	struct found f;
	int port, err, i, t;

	*res = NULL;
	if (want != AF_UNSPEC && want != AF_INET && want != AF_INET6)
		return EAI_FAMILY;
	if (!node && !service)
		return EAI_NONAME;
	if (socktype && socktype != SOCK_STREAM && socktype != SOCK_DGRAM &&
	    socktype != SOCK_RAW)
		return EAI_SOCKTYPE;
	err = service_port(service, hints, &port);
	if (err)
		return err;
	memset(&f, 0, sizeof(f));
	if (!node) {
		int passive = flags & AI_PASSIVE;

		if (wants(want, AF_INET6))
			found_add(&f, AF_INET6, passive ? any6 : lo6);
		if (wants(want, AF_INET))
			found_add(&f, AF_INET, passive ? any4 : lo4);
	} else {
		err = resolve(node, want, flags, &f);
		if (err)
			return err;
	}
	if (!f.n)
		return EAI_NONAME;
	for (i = 0; i < f.n; i++)
		for (t = 0; t < 3; t++) {
			struct addrinfo *ai;

			if (socktype ? socktype != types[t][0] :
			    (types[t][0] == SOCK_RAW || (service && t == 2)))
				continue;
			if (protocol && types[t][1] && protocol != types[t][1])
				continue;
			ai = ai_new(f.family[i], f.addr[i], port, types[t][0],
				    protocol ? protocol : types[t][1]);
			if (!ai) {
				freeaddrinfo(head);
				return EAI_MEMORY;
			}
			*tail = ai;
			tail = &ai->ai_next;
		}
	if (!head)
		return EAI_SERVICE;
	if ((flags & AI_CANONNAME) && node) {
		head->ai_canonname = strdup(node);
		if (!head->ai_canonname) {
			freeaddrinfo(head);
			return EAI_MEMORY;
		}
	}
	*res = head;
	return 0;
}

/* ---- gethostbyname ---------------------------------------------------------------- */

struct host_buf {
	char name[256];
	char *aliases[1];
	char *addrs[MAX_FOUND + 1];
	unsigned char data[MAX_FOUND][16];
};

static int fill_hostent(const char *name, int af, struct hostent *h,
			struct host_buf *b, int *h_err)
{
	struct found f;
	int err, i, n = 0;

	err = resolve(name, af, 0, &f);
	if (err || !f.n) {
		*h_err = err == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
		return -1;
	}
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->aliases[0] = NULL;
	for (i = 0; i < f.n; i++)
		if (f.family[i] == af) {
			memcpy(b->data[n], f.addr[i], 16);
			b->addrs[n] = (char *)b->data[n];
			n++;
		}
	b->addrs[n] = NULL;
	h->h_name = b->name;
	h->h_aliases = b->aliases;
	h->h_addrtype = af;
	h->h_length = af == AF_INET ? 4 : 16;
	h->h_addr_list = b->addrs;
	return 0;
}

EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
	static __thread struct hostent h;
	static __thread struct host_buf b;

	if (af != AF_INET && af != AF_INET6) {
		h_errno = NO_RECOVERY;
		return NULL;
	}
	if (fill_hostent(name, af, &h, &b, &h_errno))
		return NULL;
	return &h;
}

EXPORT struct hostent *gethostbyname(const char *name)
{
	return gethostbyname2(name, AF_INET);
}

EXPORT int gethostbyname2_r(const char *name, int af, struct hostent *ret,
			    char *buf, size_t buflen, struct hostent **result,
			    int *h_errnop)
{
	struct host_buf *b = (struct host_buf *)
		(((uintptr_t)buf + 15) & ~(uintptr_t)15);

	*result = NULL;
	if (af != AF_INET && af != AF_INET6) {
		*h_errnop = NO_RECOVERY;
		return EAFNOSUPPORT;
	}
	if (buflen < sizeof(*b) + 16)
		return ERANGE;
	if (fill_hostent(name, af, ret, b, h_errnop))
		return *h_errnop == TRY_AGAIN ? EAGAIN : 0;
	*result = ret;
	return 0;
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
			   size_t buflen, struct hostent **result,
			   int *h_errnop)
{
	return gethostbyname2_r(name, AF_INET, ret, buf, buflen, result,
				h_errnop);
}

/* ---- getnameinfo ------------------------------------------------------------------ */

/* The first /etc/hosts name of addr. */
static int hosts_reverse(int family, const void *addr, char *out, size_t len)
{
	char line[512], *tok, *save;
	unsigned char a[16];
	int alen = family == AF_INET ? 4 : 16, found = 0;
	FILE *fp = fopen("/etc/hosts", "re");

	if (!fp)
		return 0;
	while (!found && fgets(line, sizeof(line), fp)) {
		char *hash = strchr(line, '#');

		if (hash)
			*hash = 0;
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok || inet_pton(family, tok, a) != 1 ||
		    memcmp(a, addr, alen))
			continue;
		tok = strtok_r(NULL, " \t\r\n", &save);
		if (tok && strlen(tok) < len) {
			strcpy(out, tok);
			found = 1;
		}
	}
	fclose(fp);
	return found;
}

EXPORT int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
		       socklen_t hostlen, char *serv, socklen_t servlen,
		       int flags)
{
	const void *addr;
	int port;

	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else if (sa->sa_family == AF_INET6 &&
		   salen >= sizeof(struct sockaddr_in6)) {
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else {
		return EAI_FAMILY;
	}
	if (host && hostlen) {
		if ((flags & NI_NUMERICHOST) ||
		    !hosts_reverse(sa->sa_family, addr, host, hostlen)) {
			if (flags & NI_NAMEREQD)
				return EAI_NONAME;
			if (!inet_ntop(sa->sa_family, addr, host, hostlen))
				return EAI_OVERFLOW;
		}
	}
	if (serv && servlen) {
		struct servent se, *sp = NULL;
		char buf[1024];

		if (!(flags & NI_NUMERICSERV))
			getservbyport_r(htons(port), flags & NI_DGRAM ? "udp" :
					"tcp", &se, buf, sizeof(buf), &sp);
		if (sp && strlen(sp->s_name) < servlen)
			strcpy(serv, sp->s_name);
		else if (snprintf(serv, servlen, "%d", port) >= (int)servlen)
			return EAI_OVERFLOW;
	}
	return 0;
}

/* ---- interface names ------------------------------------------------------------ */

/*
 * The program's interfaces are the kernel's: glibc's versions ask the
 * host's (their netlink and ioctl sockets are internal).  The kernel
 * library's own host-side calls keep glibc's (host-syms.txt).
 */
EXPORT unsigned int if_nametoindex(const char *name)
{
	struct ifreq ifr;
	long fd, ret;

	if (!preload_running || preload_forked)
		return HOST_FN(if_nametoindex)(name);
	if (strlen(name) >= IFNAMSIZ) {
		errno = ENODEV;
		return 0;
	}
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, name);
	fd = ksys(LKL__NR_socket, AF_INET, SOCK_DGRAM, 0, 0, 0, 0);
	if (fd < 0) {
		kret(fd);
		return 0;
	}
	ret = ksys(LKL__NR_ioctl, fd, SIOCGIFINDEX, (long)&ifr, 0, 0, 0);
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	if (ret < 0) {
		kret(ret);
		return 0;
	}
	return (unsigned int)ifr.ifr_ifindex;
}

EXPORT char *if_indextoname(unsigned int index, char name[IF_NAMESIZE])
{
	struct ifreq ifr;
	long fd, ret;

	if (!preload_running || preload_forked)
		return HOST_FN(if_indextoname)(index, name);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = (int)index;
	fd = ksys(LKL__NR_socket, AF_INET, SOCK_DGRAM, 0, 0, 0, 0);
	if (fd < 0) {
		kret(fd);
		return NULL;
	}
	ret = ksys(LKL__NR_ioctl, fd, SIOCGIFNAME, (long)&ifr, 0, 0, 0);
	ksys(LKL__NR_close, fd, 0, 0, 0, 0, 0);
	if (ret < 0) {
		errno = ret == -ENODEV ? ENXIO : (int)-ret;
		return NULL;
	}
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	return name;
}
