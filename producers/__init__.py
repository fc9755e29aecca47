"""tickindex producers."""
