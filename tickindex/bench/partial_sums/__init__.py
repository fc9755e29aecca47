"""``tickindex bench --partial-sums``: the plan beyond one reader, simulated on the broker.

``maths`` (the worker's partial sums and the messages), ``reducer`` (partials to levels, the
divisor at events), ``world`` (the seeded input and the engine's answer), ``processes``
(workers, reducer and publisher over Kafka), ``run`` (one run), ``figures`` (read back and
reported), ``settings`` (the flags' values).
"""
