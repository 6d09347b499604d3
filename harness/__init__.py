"""What the tests and the benchmarks share: network namespaces, line-driven
child processes and the tcp_stream program's offload matrix.

Import it with the repository root on ``sys.path`` (pytest's ``pythonpath``
setting does it for the tests; the benchmark scripts insert it).
"""
