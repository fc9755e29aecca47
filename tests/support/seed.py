"""The random seed of every seeded test (``TICKINDEX_TEST_SEED`` changes it)."""

from __future__ import annotations

import os

SEED = int(os.environ.get("TICKINDEX_TEST_SEED", "20261121"))
