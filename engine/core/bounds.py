"""Bounds on every number that enters the maths, shared by the wire decoders, the file readers
and tick screening: NaN fails every bound, and values inside them keep sums far from overflow."""

MIN_RATIO = 1e-6
MAX_RATIO = 1e6
MIN_PRICE = 1e-6
MAX_PRICE = 1e12
"""Largest price: events' prices are at most this, ticks at or above it are rejected
(``price_out_of_range``). No listed stock trades near it in any currency, and it keeps
price x shares x FAF x CF far from float overflow."""
MIN_SHARES = 1.0
MAX_SHARES = 1e15
MAX_VOLUME = 1e12
"""Largest volume of one tick, in shares: above the issued shares of any listed stock, and it
keeps price x volume and a day's sum of them far from float overflow."""
MAX_CODE_LENGTH = 64
MAX_ID_LENGTH = 256
MAX_REVIEW_ROWS = 20_000
MAX_LEVEL = 1e12
"""Largest previous closing level of an index."""
MAX_FX_RATE = 1e12
"""Largest FX rate a file may give (units of the variant currency per unit of the index one)."""
