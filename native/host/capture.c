/*
 * Packet capture to a pcap file (<lkl/capture.h>).
 *
 * The device's threads copy each frame into a byte ring under a mutex
 * (no I/O there); a writer thread takes what is queued and writes it
 * out.  Each ring record is already a pcap record (16-byte header, then
 * the bytes), so the writer writes the ring's contents as they are.  A
 * record never wraps: when it does not fit at the end, the ring's valid
 * end is marked and it goes to the start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lkl/capture.h>

#include "capture.h"

#define PCAP_MAGIC	0xa1b2c3d4U	/* microsecond timestamps */
#define LINKTYPE_ETHERNET 1
#define DEFAULT_RING	(4U << 20)
#define REC_HDR		16

struct pcap_file_header {
	uint32_t magic;
	uint16_t major, minor;
	int32_t thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_rec_header {
	uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

struct lkl_capture {
	struct lkl_netdev *dev;
	int fd;
	unsigned int snaplen;
	uint64_t count;			/* 0: no limit */

	pthread_mutex_t lock;
	pthread_cond_t more;		/* the writer has work or must stop */
	pthread_cond_t progress;	/* done, for lkl_capture_wait */
	uint8_t *ring;
	size_t size, head, tail, end;	/* end: valid bytes when wrapped */
	int stopping, write_error;
	struct lkl_capture_stats st;
	pthread_t writer;
};

static int write_all(int fd, const void *buf, size_t n)
{
	while (n) {
		ssize_t r = write(fd, buf, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf = (const char *)buf + r;
		n -= r;
	}
	return 0;
}

/* Room for need bytes at the head: its offset, or -1 (lock held). */
static long ring_reserve(struct lkl_capture *cap, size_t need)
{
	if (cap->head >= cap->tail) {
		if (cap->size - cap->head >= need)
			return cap->head;
		/* Wrap; head must not catch up with tail (that means empty). */
		if (need < cap->tail) {
			cap->end = cap->head;
			cap->head = 0;
			return 0;
		}
		return -1;
	}
	return cap->tail - cap->head > need ? (long)cap->head : -1;
}

void capture_frame(struct lkl_capture *cap, const struct iovec *iov, int cnt,
		   size_t len)
{
	size_t caplen = len < cap->snaplen ? len : cap->snaplen, done = 0;
	struct pcap_rec_header h;
	struct timespec ts;
	uint8_t *dst;
	long at;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	h.ts_sec = ts.tv_sec;
	h.ts_usec = ts.tv_nsec / 1000;
	h.incl_len = caplen;
	h.orig_len = len;

	pthread_mutex_lock(&cap->lock);
	if (cap->stopping || cap->st.done)
		goto out;
	at = ring_reserve(cap, REC_HDR + caplen);
	if (at < 0) {
		cap->st.dropped++;
		goto out;
	}
	dst = cap->ring + at;
	memcpy(dst, &h, REC_HDR);
	dst += REC_HDR;
	for (i = 0; i < cnt && done < caplen; i++) {
		size_t n = iov[i].iov_len;

		if (n > caplen - done)
			n = caplen - done;
		memcpy(dst + done, iov[i].iov_base, n);
		done += n;
	}
	cap->head = at + REC_HDR + caplen;
	cap->st.frames++;
	cap->st.bytes += caplen;
	if (cap->count && cap->st.frames >= cap->count) {
		cap->st.done = 1;
		pthread_cond_broadcast(&cap->progress);
	}
	pthread_cond_signal(&cap->more);
out:
	pthread_mutex_unlock(&cap->lock);
}

static void *writer_main(void *arg)
{
	struct lkl_capture *cap = arg;

	pthread_mutex_lock(&cap->lock);
	for (;;) {
		size_t from, to;

		while (cap->head == cap->tail && !cap->stopping)
			pthread_cond_wait(&cap->more, &cap->lock);
		if (cap->head == cap->tail)
			break;		/* stopping, and everything written */
		from = cap->tail;
		to = cap->tail < cap->head ? cap->head : cap->end;
		pthread_mutex_unlock(&cap->lock);
		if (!cap->write_error && write_all(cap->fd, cap->ring + from,
						   to - from))
			cap->write_error = errno ? errno : EIO;
		pthread_mutex_lock(&cap->lock);
		cap->tail = to;
		if (cap->tail == cap->end && cap->tail > cap->head) {
			cap->tail = 0;
			cap->end = 0;
		}
	}
	pthread_mutex_unlock(&cap->lock);
	return NULL;
}

int lkl_capture_start(struct lkl_netdev *dev, int fd, unsigned int snaplen,
		      uint64_t count, size_t ring_bytes,
		      struct lkl_capture **out)
{
	struct pcap_file_header fh;
	struct lkl_capture *cap;
	int r;

	if (!dev || fd < 0 || !out)
		return -EINVAL;
	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return -ENOMEM;
	cap->dev = dev;
	cap->fd = fd;
	cap->snaplen = snaplen ? snaplen : 65535;
	cap->count = count;
	cap->size = ring_bytes ? ring_bytes : DEFAULT_RING;
	if (cap->size < 2 * (REC_HDR + cap->snaplen))
		cap->size = 2 * (REC_HDR + cap->snaplen);
	cap->ring = malloc(cap->size);
	if (!cap->ring) {
		free(cap);
		return -ENOMEM;
	}
	pthread_mutex_init(&cap->lock, NULL);
	pthread_cond_init(&cap->more, NULL);
	pthread_cond_init(&cap->progress, NULL);

	memset(&fh, 0, sizeof(fh));
	fh.magic = PCAP_MAGIC;
	fh.major = 2;
	fh.minor = 4;
	fh.snaplen = cap->snaplen;
	fh.linktype = LINKTYPE_ETHERNET;
	if (write_all(fd, &fh, sizeof(fh))) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&cap->writer, NULL, writer_main, cap);
	if (r)
		goto fail;
	if (netdev_set_capture(dev, NULL, cap)) {
		pthread_mutex_lock(&cap->lock);
		cap->stopping = 1;
		pthread_cond_signal(&cap->more);
		pthread_mutex_unlock(&cap->lock);
		pthread_join(cap->writer, NULL);
		r = -EBUSY;
		goto fail;
	}
	*out = cap;
	return 0;
fail:
	free(cap->ring);
	free(cap);
	return r;
}

void lkl_capture_get_stats(struct lkl_capture *cap,
			   struct lkl_capture_stats *st)
{
	pthread_mutex_lock(&cap->lock);
	*st = cap->st;
	pthread_mutex_unlock(&cap->lock);
}

int lkl_capture_wait(struct lkl_capture *cap, int timeout_ms)
{
	struct timespec ts;
	int done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cap->lock);
	while (!cap->st.done &&
	       pthread_cond_timedwait(&cap->progress, &cap->lock, &ts) == 0)
		;
	done = cap->st.done;
	pthread_mutex_unlock(&cap->lock);
	return done;
}

int lkl_capture_stop(struct lkl_capture *cap, struct lkl_capture_stats *final)
{
	int err;

	if (!cap)
		return -EINVAL;
	if (netdev_set_capture(cap->dev, cap, NULL))
		return -EINVAL;
	pthread_mutex_lock(&cap->lock);
	/* Detached: the device adds no frame from here on. */
	if (final)
		*final = cap->st;
	cap->stopping = 1;
	pthread_cond_signal(&cap->more);
	pthread_mutex_unlock(&cap->lock);
	pthread_join(cap->writer, NULL);
	err = cap->write_error;
	close(cap->fd);
	pthread_cond_destroy(&cap->more);
	pthread_cond_destroy(&cap->progress);
	pthread_mutex_destroy(&cap->lock);
	free(cap->ring);
	free(cap);
	return -err;
}
