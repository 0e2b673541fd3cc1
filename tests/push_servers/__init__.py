"""Local servers that speak the push protocols (base.py: what they share; one module per vendor; FCM's is
tests/fcm_server.py), for tests and benchmarks."""
