/*
 * Which kernel network interface a virtio-mmio device became: asked of
 * the running kernel through its /proc and /sys.
 */
#ifndef LKL_HOST_NET_IFINDEX_H
#define LKL_HOST_NET_IFINDEX_H

/* The ifindex of the netdev on the device at base, or -errno. */
int net_find_ifindex(unsigned long base);

#endif
