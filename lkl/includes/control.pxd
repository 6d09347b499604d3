# C declarations of the control endpoint and packet capture
# (native/include/lkl/control.h, native/include/lkl/capture.h).
from libc.stdint cimport uint64_t

from lkl.includes.netdev cimport lkl_netdev


cdef extern from "lkl/control.h" nogil:
    int lkl_control_dir(char *buf, size_t len)
    int lkl_control_start(const char *name)
    int lkl_control_stop()
    const char *lkl_control_path()
    int lkl_control_add_netdev(lkl_netdev *dev)
    void lkl_control_del_netdev(lkl_netdev *dev)

    struct lkl_control_stats:
        uint64_t clients, accepted, refused, requests, malformed, errors, open_fds

    void lkl_control_get_stats(lkl_control_stats *st)


cdef extern from "lkl/capture.h" nogil:
    struct lkl_capture:
        pass

    struct lkl_capture_stats:
        uint64_t frames, bytes, dropped
        int done

    int lkl_capture_start(lkl_netdev *dev, int fd, unsigned int snaplen, uint64_t count,
                          size_t ring_bytes, lkl_capture **out)
    void lkl_capture_get_stats(lkl_capture *cap, lkl_capture_stats *st)
    int lkl_capture_wait(lkl_capture *cap, int timeout_ms)
    int lkl_capture_stop(lkl_capture *cap, lkl_capture_stats *final)
