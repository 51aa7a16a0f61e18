"""Users and sessions: who may log in (``users``), how passwords are kept (``passwords``), and the
server-side sessions a login creates (``sessions`` is the interface, ``sessions_sqlite`` implements it).
"""
