"""Local servers that speak the vendor push protocols (Huawei, Honor, …), for tests and benchmarks."""
