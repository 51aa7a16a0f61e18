"""Live event sources. ``alpaca`` is the Alpaca feed (``portfolio-ws serve --feed alpaca``):
``alpaca_mapping`` converts Alpaca's wire values, ``alpaca_state`` keeps one account's portfolio,
``alpaca_sdk`` adapts alpaca-py's streams to a running loop, ``alpaca`` wires them to the bus."""
