"""Click commands, one module each; ``cli.py`` assembles them into the ``portfolio-ws`` group."""
