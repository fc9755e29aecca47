"""The ``tickindex`` command line."""
