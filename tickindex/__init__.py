"""tickindex: a real-time stock index engine."""
