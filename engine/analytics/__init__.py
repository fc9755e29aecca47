"""Index analytics computed from the engine's own state, at most once per interval per index.

Per-index figures (change, day range, realised volatility, drawdown, breadth, movers by
contribution, turnover), pair analytics (relative strength, rolling beta and correlation, a
futures hedge line) and signals over them. Synchronous numpy, like the rest of the core; the
records they become are msgspec Structs published on the analytics topic.
"""
