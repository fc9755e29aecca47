"""The gateway load benchmark's figures as text."""

from __future__ import annotations

from tickindex.bench.gateway_load import GatewayLoadFigures


def format_gateway_load(figures: GatewayLoadFigures) -> str:
    """The figures as a few lines of text."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    mib = 1 << 20
    return "\n".join(
        [
            f"gateway load: {figures.clients} fast + {figures.slow_clients} slow WebSocket clients,"
            f" {figures.levels_per_s:,.0f} levels/s for {figures.seconds:g} s"
            f" ({figures.levels_published:,} published in {figures.publish_seconds:.1f} s)",
            f"  fast: {figures.fast_levels:,} levels received, delay (bound per message) p50 "
            f"{ms(figures.fast_delay_p50_ms)}, p99 {ms(figures.fast_delay_p99_ms)}, max "
            f"{ms(figures.fast_delay_max_ms)} (worst client p99 "
            f"{ms(figures.worst_client_p99_ms)}); {figures.fast_levels_missing:,} missing, "
            f"{figures.fast_disconnected} disconnected",
            f"  audited ({figures.auditing_clients} clients, every level decoded): delay p99 "
            f"{ms(figures.audited_delay_p99_ms)} (bound {ms(figures.audited_bound_p99_ms)}), "
            f"{figures.audited_seqs_skipped:,} seqs skipped",
            f"  gateway: {figures.gateway_messages_sent:,} levels in "
            f"{figures.gateway_frames_sent:,} WebSocket messages",
            f"  slow: {figures.slow_levels:,} levels received; gateway: "
            f"{figures.levels_conflated:,} levels conflated, "
            f"{figures.gateway_disconnects_slow} slow disconnects",
            f"  gateway RSS {figures.gateway_rss_before / mib:.0f} MiB before, "
            f"{figures.gateway_rss_after / mib:.0f} MiB after, max "
            f"{figures.gateway_max_rss / mib:.0f} MiB; CPU of the run: gateway "
            f"{figures.gateway_cpu_s:.1f} s, publisher and clients {figures.clients_cpu_s:.1f} s",
        ]
    )
