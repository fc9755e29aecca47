"""Benchmarks of ``tickindex bench``: the core engine against a naive recompute, and the live
service against a raw aiokafka consumer on a real broker."""
