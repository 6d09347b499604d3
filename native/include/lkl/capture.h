/*
 * lkl: packet capture on a virtio-net device, to a pcap file.
 *
 * Every frame the device moves, in both directions, is copied (up to
 * snaplen bytes, without the virtio-net header; super-frames as the
 * device sees them) into a bounded ring with its time; a writer thread
 * drains the ring to the file as pcap records (link type Ethernet).  A
 * frame that finds the ring full is dropped from the capture and
 * counted, never delayed.  With no capture running the device pays one
 * predictable branch per frame.
 */
#ifndef LKL_CAPTURE_H
#define LKL_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lkl_netdev;
struct lkl_capture;

struct lkl_capture_stats {
	uint64_t frames;	/* recorded */
	uint64_t bytes;		/* recorded, after snaplen */
	uint64_t dropped;	/* found the ring full */
	int done;		/* count reached */
};

/*
 * Start capturing dev's frames to fd (the capture owns it from here and
 * closes it when stopped; it gets the pcap file header now).  snaplen
 * 0 means 65535; count 0 means no limit; ring_bytes 0 means 4 MiB.
 * -EBUSY if dev already has a capture.
 */
int lkl_capture_start(struct lkl_netdev *dev, int fd, unsigned int snaplen,
		      uint64_t count, size_t ring_bytes,
		      struct lkl_capture **out);

void lkl_capture_get_stats(struct lkl_capture *cap,
			   struct lkl_capture_stats *st);

/* Wait up to timeout_ms for count frames: 1 if done, 0 if not yet. */
int lkl_capture_wait(struct lkl_capture *cap, int timeout_ms);

/*
 * Detach from the device, write out what is queued, close, free.  If
 * final is not NULL it gets the counters as they stand once no frame can
 * be added any more: exactly what the file holds.
 */
int lkl_capture_stop(struct lkl_capture *cap, struct lkl_capture_stats *final);

#ifdef __cplusplus
}
#endif

#endif
