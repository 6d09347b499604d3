/*
 * The device side of packet capture (capture.c; the API is
 * <lkl/capture.h>): virtio_net.c hands every frame it moves to
 * capture_frame() while a capture is set, under the queue's lock.
 */
#ifndef LKL_HOST_CAPTURE_H
#define LKL_HOST_CAPTURE_H

#include <stddef.h>
#include <sys/uio.h>

struct lkl_netdev;
struct lkl_capture;

/* Record one frame (without its virtio-net header) of len bytes. */
void capture_frame(struct lkl_capture *cap, const struct iovec *iov, int cnt,
		   size_t len);

/*
 * Replace the device's capture old (NULL: none) with cap (NULL: none);
 * -EBUSY if it has another.  Takes both queue locks, so once it returns
 * no frame is being recorded into old.
 */
int netdev_set_capture(struct lkl_netdev *dev, struct lkl_capture *old,
		       struct lkl_capture *cap);

#endif
