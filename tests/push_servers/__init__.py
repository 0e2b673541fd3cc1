"""Local servers that speak the vendors' push protocols (auth, send, receipts), for tests and benchmarks."""
