"""Events another server hands portfolio-ws: the checks every published item passes (``items``),
whichever way it came (``POST /api/v1/publish``, ``server/publish.py``; a Redis stream, ``streams``)."""
