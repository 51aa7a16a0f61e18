"""What nodes of a cluster share through Redis: the one Redis client factory (``redis``) and every
node's admin figures (``stats``). The bus, slots and session stores that also use Redis live with
their interfaces (``bus/``, ``slots/``, ``auth/sessions/``)."""
