from tests.reliability.procs import serve_process  # noqa: F401  (a fixture)
