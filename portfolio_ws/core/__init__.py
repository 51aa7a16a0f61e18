"""The sans-I/O core: no sockets, no event loop, no clock. Time comes in as ``now`` (epoch seconds)."""
