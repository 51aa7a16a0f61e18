"""The market-hours simulator: simulated users trading a simulated NYSE day, producing the same
portfolio events the live feed produces.

The core (``Simulation``) is sans-I/O; ``simulator.feed.SimulatorFeed`` drives it on the IOLoop.
"""

from __future__ import annotations

from .engine import Simulation

__all__ = ["Simulation"]
