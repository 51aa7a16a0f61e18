"""Users and sessions: who may log in (``users``), how passwords are kept (``passwords``), and the
server-side sessions a login creates (``sessions/`` holds the interface and its SQLite, Redis and external implementations).
"""
