# A blocking connect() on a helper thread (lkl/_connect.c).

cdef extern from "_connect.h" nogil:
    struct glue_connect
    int glue_connect_start(int kfd, const void *addr, int len, glue_connect **out)
    int glue_connect_wait(glue_connect *c, double timeout, long *ret)
    void glue_connect_put(glue_connect *c)
