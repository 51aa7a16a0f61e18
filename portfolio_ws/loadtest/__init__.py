"""The load tester: many WebSocket clients in processes of their own, driving a real server.

``wsclient`` is a deliberately minimal RFC 6455 client (thousands per process), ``worker`` runs a
slice of the clients in one process, ``run`` orchestrates server, workers, sampling and reports.
"""
