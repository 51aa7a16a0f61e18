"""Tornado adapters around the sans-I/O core: the service (IOLoop glue), handlers, app factory."""
