"""The Kafka adapter of the live service: the input consumer and its fetched records, the
output stage (levels, dead letters, checkpoints, in commit order; optionally in a child
process), exactly-once recovery, topics, checkpoints on a compacted topic and client security.

May import the engine packages below ``engine.live`` and, of ``engine.live``, only its
foundation modules (``config``, ``codec``, ``log_limits``, ``security_settings``); never the
service.
"""
