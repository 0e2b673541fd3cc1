"""Local servers that speak the vendors' push protocols (one module per vendor), for tests and benchmarks."""
