"""Pure decision code for Tollgate: no I/O, no gevent, no Redis.

Everything here takes plain values and returns plain values, so it is tested
without a network and reused unchanged by the controller, the CLI's dry run
(`tollgate check`) and the benchmark.
"""
