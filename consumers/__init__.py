"""tickindex consumers."""
