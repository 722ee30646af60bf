"""Chat platform emulators served over HTTP on loopback, shared by tests and benchmarks."""
