/*
 * The adapter's packet path: an in-memory backend for one virtio-net
 * NIC, standing where packetdrill's tun device stands.
 *
 * packetdrill speaks IP packets; the NIC speaks Ethernet frames with a
 * virtio-net header.  Injected packets get an Ethernet header addressed
 * to the NIC and wait in a queue that the device reads when the queue's
 * eventfd is readable.  What the kernel sends (TSO super-frames as they
 * are, as tun hands them out) is time-stamped when the device hands it
 * over, stripped to its IP packet and queued for packetdrill's sniffer.
 * Frames that are not IP (none are expected: the NIC is NOARP) are
 * dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lkl/netdev.h>

#include "net_backend.h"
#include "pd.h"

#define ETH_HLEN	14
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86dd
/* Far more than a script keeps in flight; beyond it packets are lost. */
#define QUEUE_MAX	4096

struct pkt {
	struct pkt *next;
	long long usecs;
	size_t len;
	uint8_t data[];
};

struct queue {
	struct pkt *head, *tail;
	int count;
};

static struct {
	struct lkl_netdev_backend be;
	pthread_mutex_t lock;
	pthread_cond_t sent;		/* out gained a packet */
	struct queue in, out;		/* to the kernel, from the kernel */
	uint8_t mac[6];
} pd = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static void push(struct queue *q, struct pkt *p)
{
	p->next = NULL;
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	q->count++;
}

static struct pkt *pop(struct queue *q)
{
	struct pkt *p = q->head;

	if (p) {
		q->head = p->next;
		if (!q->head)
			q->tail = NULL;
		q->count--;
	}
	return p;
}

static size_t iov_bytes(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;

	while (iovcnt--)
		n += iov++->iov_len;
	return n;
}

static long long now_usecs(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* Kernel -> packetdrill: the device's transmit. */
static ssize_t pd_tx(struct lkl_netdev_backend *be, const vnet_hdr_t *hdr,
		     const struct iovec *iov, int iovcnt)
{
	size_t len = iov_bytes(iov, iovcnt), off = 0;
	long long usecs = now_usecs();
	struct pkt *p;
	uint16_t type;
	int i;

	if (len < ETH_HLEN)
		return len;
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < iovcnt; i++) {
		memcpy(p->data + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	type = (p->data[12] << 8) | p->data[13];
	if (type != ETH_P_IP && type != ETH_P_IPV6) {
		free(p);
		return len;
	}
	memmove(p->data, p->data + ETH_HLEN, len - ETH_HLEN);
	p->len = len - ETH_HLEN;
	p->usecs = usecs;

	pthread_mutex_lock(&pd.lock);
	if (pd.out.count < QUEUE_MAX) {
		push(&pd.out, p);
		p = NULL;
		pthread_cond_signal(&pd.sent);
	}
	pthread_mutex_unlock(&pd.lock);
	free(p);
	return len;
}

/* packetdrill -> kernel: the device's receive. */
static ssize_t pd_rx(struct lkl_netdev_backend *be, vnet_hdr_t *hdr,
		     const struct iovec *iov, int iovcnt)
{
	size_t room = iov_bytes(iov, iovcnt), off = 0;
	struct pkt *p;
	uint64_t drain;
	int i;

	pthread_mutex_lock(&pd.lock);
	p = pop(&pd.in);
	/* Empty again: the eventfd stops being readable. */
	if (p && !pd.in.head && read(pd.be.rx_fd, &drain, sizeof(drain)) < 0)
		drain = 0;
	pthread_mutex_unlock(&pd.lock);
	if (!p)
		return -EAGAIN;

	memset(hdr, 0, sizeof(*hdr));
	if (p->len > room) {
		free(p);
		return -EMSGSIZE;
	}
	for (i = 0; i < iovcnt && off < p->len; i++) {
		size_t n = iov[i].iov_len;

		if (n > p->len - off)
			n = p->len - off;
		memcpy(iov[i].iov_base, p->data + off, n);
		off += n;
	}
	i = p->len;
	free(p);
	return i;
}

static void pd_free(struct lkl_netdev_backend *be)
{
	struct pkt *p;

	pthread_mutex_lock(&pd.lock);
	while ((p = pop(&pd.in)))
		free(p);
	while ((p = pop(&pd.out)))
		free(p);
	pthread_mutex_unlock(&pd.lock);
	close(pd.be.rx_fd);
}

static const struct net_backend_ops pd_ops = {
	.tx = pd_tx,
	.rx = pd_rx,
	.free = pd_free,
};

struct lkl_netdev_backend *pd_backend_create(void)
{
	pthread_condattr_t attr;
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	if (fd < 0)
		return NULL;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pd.sent, &attr);
	pthread_condattr_destroy(&attr);
	pd.be.ops = &pd_ops;
	/* Whatever the driver takes: super-frames both ways. */
	pd.be.offloads = LKL_NETDEV_OFFLOAD_MASK;
	pd.be.rx_fd = pd.be.tx_fd = fd;
	return &pd.be;
}

void pd_backend_set_mac(const uint8_t mac[6])
{
	memcpy(pd.mac, mac, 6);
}

int pd_backend_inject(const void *ip, size_t len)
{
	struct pkt *p;
	uint64_t one = 1;
	int version;

	if (len < 1)
		return -EINVAL;
	version = ((const uint8_t *)ip)[0] >> 4;
	if (version != 4 && version != 6)
		return -EPROTONOSUPPORT;
	p = malloc(sizeof(*p) + ETH_HLEN + len);
	if (!p)
		return -ENOMEM;
	memcpy(p->data, pd.mac, 6);
	/* A locally administered source: "packetdrill's router". */
	memcpy(p->data + 6, "\x02\x00\x00\x00\x00\x01", 6);
	p->data[12] = (version == 4 ? ETH_P_IP : ETH_P_IPV6) >> 8;
	p->data[13] = (version == 4 ? ETH_P_IP : ETH_P_IPV6) & 0xff;
	memcpy(p->data + ETH_HLEN, ip, len);
	p->len = ETH_HLEN + len;

	pthread_mutex_lock(&pd.lock);
	if (pd.in.count >= QUEUE_MAX) {
		pthread_mutex_unlock(&pd.lock);
		free(p);
		return -ENOBUFS;
	}
	push(&pd.in, p);
	if (write(pd.be.rx_fd, &one, sizeof(one)) < 0)
		one = 0;
	pthread_mutex_unlock(&pd.lock);
	return 0;
}

int pd_backend_sniff(void *buf, size_t *len, long long *usecs,
		     int timeout_ms)
{
	struct timespec deadline;
	struct pkt *p;
	size_t n;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}

	pthread_mutex_lock(&pd.lock);
	while (!(p = pop(&pd.out)))
		if (pthread_cond_timedwait(&pd.sent, &pd.lock, &deadline) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&pd.lock);
	if (!p) {
		*len = 0;
		return 0;
	}
	n = p->len < *len ? p->len : *len;
	memcpy(buf, p->data, n);
	*len = n;
	*usecs = p->usecs;
	free(p);
	return 0;
}
