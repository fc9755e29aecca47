"""The HTTP/WebSocket gateway: the level topic served to desk tools over REST, WebSocket and SSE.

``LevelBook`` keeps the latest level and a bounded history ring per index; ``ClientQueue`` is
one stream client's bounded, conflating queue; ``build_app`` wires them into an aiohttp
application fed by a ``LevelSubscriber`` (``Gateway``).
"""
