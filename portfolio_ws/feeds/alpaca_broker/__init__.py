"""The Alpaca Broker API feed: every account of a broker partner through one trade-events stream
(SSE) and one broker key; docs/alpaca.md "The Broker API feed"."""
