"""What the tests and the benchmarks share: network namespaces, line-driven
child processes, the tcp_stream program's offload matrix, test TLS
certificates (tlscerts), the CPython suite runner (cpython_suites),
connected socket pairs (sockets) and a host TCP sink in a namespace (sink).

Import it with the repository root on ``sys.path`` (pytest's ``pythonpath``
setting does it for the tests; the benchmark scripts insert it).
"""
