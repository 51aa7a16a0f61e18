"""portfolio-ws: real-time portfolio streaming over one WebSocket."""

__version__ = "0.1.0"
