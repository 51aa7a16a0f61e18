"""The Alpaca feed (``portfolio-ws serve --feed alpaca``): ``mapping`` converts Alpaca's wire values,
``state`` keeps one account's portfolio, ``sdk`` adapts alpaca-py's streams to a running loop,
``feed`` wires them to the bus."""
