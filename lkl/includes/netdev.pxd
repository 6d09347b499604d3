# C declarations of the lkl virtio-net devices (native/include/lkl/netdev.h).
from libc.stdint cimport uint64_t


cdef extern from "lkl/netdev.h" nogil:
    struct lkl_netdev_backend:
        pass

    struct lkl_netdev:
        pass

    int lkl_netdev_tap_create(const char *ifname, lkl_netdev_backend **be)
    int lkl_netdev_raw_create(const char *ifname, lkl_netdev_backend **be)
    int lkl_netdev_pipe_create(int rx_fd, int tx_fd, lkl_netdev_backend **be)
    int lkl_netdev_pipe_pair(int fds[2])
    uint64_t lkl_netdev_backend_offloads(const lkl_netdev_backend *be)
    void lkl_netdev_backend_free(lkl_netdev_backend *be)

    struct lkl_netdev_config:
        uint64_t offload
        int has_mac
        unsigned char mac[6]
        int mtu
        int queue_size
        int busy_poll_us
        int direct_rx

    int lkl_netdev_create(lkl_netdev_backend *be, const lkl_netdev_config *cfg,
                          lkl_netdev **dev)
    int lkl_netdev_cmdline(lkl_netdev *dev, char *buf, size_t len)
    int lkl_netdev_attach(lkl_netdev *dev)
    int lkl_netdev_ifindex(lkl_netdev *dev)
    uint64_t lkl_netdev_offered(const lkl_netdev *dev)
    uint64_t lkl_netdev_negotiated(const lkl_netdev *dev)
    uint64_t lkl_netdev_features(const lkl_netdev *dev)

    struct lkl_netdev_stats:
        uint64_t rx_packets, rx_bytes
        uint64_t tx_packets, tx_bytes
        uint64_t rx_dropped
        uint64_t rx_malformed
        uint64_t rx_oversize
        uint64_t rx_errors
        uint64_t tx_dropped
        uint64_t tx_errors
        uint64_t rx_sw_csum
        uint64_t rx_sw_gso
        uint64_t irqs
        uint64_t kicks
        uint64_t rx_direct
        uint64_t poll_errors
        uint64_t poller_rx_wakeups
        uint64_t busy_polls
        uint64_t busy_poll_hits
        uint64_t busy_poll_ns

    void lkl_netdev_get_stats(const lkl_netdev *dev, lkl_netdev_stats *st)
    void lkl_netdev_set_link(lkl_netdev *dev, int up)
    void lkl_netdev_set_busy_poll(lkl_netdev *dev, int us)
    int lkl_netdev_free(lkl_netdev *dev)
