from setuptools import find_packages, setup

setup(
    name="portfolio-ws",
    version="0.1.0",
    description="Real-time portfolio streaming (positions, orders, account, trades) over one WebSocket",
    python_requires=">=3.11",
    packages=find_packages(include=["portfolio_ws", "portfolio_ws.*", "simulator", "simulator.*"]),
    py_modules=["cli"],
    package_data={"portfolio_ws": ["py.typed", "static/*", "apidocs/*.yaml"]},
    include_package_data=True,
    install_requires=[
        "tornado>=6.4,<7",
        "alpaca-py>=0.44,<0.45",
        "ujson>=5.9",
        "click>=8.1",
        # argon2id password hashing: a vetted KDF beats anything hand-written.
        "argon2-cffi>=23.1",
        # YAML config parsing.
        "PyYAML>=6.0",
        # IANA time zones for the NYSE calendar on machines without /usr/share/zoneinfo.
        "tzdata>=2024.1",
        # The NYSE's full-day closures, one-off ones included (2001-09-11..14, days of mourning,
        # Hurricane Sandy): a maintained calendar beats a hand-kept table that missed some.
        "holidays>=0.60",
        # Alpaca's market-data stream speaks msgpack (also a dependency of alpaca-py).
        "msgpack>=1.0",
        # /metrics in the Prometheus text format, the format operators' scrapers read.
        "prometheus-client>=0.20",
        # Cluster mode (cluster.redis_url): the Redis bus and session store use redis.asyncio.
        "redis>=5.0",
        # auth.database = postgresql://...: users and sessions in PostgreSQL, shared by nodes on any
        # host. psycopg 3 speaks asyncio natively (no thread per query); the binary wheel needs no
        # libpq on the machine; psycopg-pool bounds and reuses connections under login bursts.
        "psycopg[binary]>=3.1",
        "psycopg-pool>=3.2",
        # Linked broker accounts (portfolio-ws accounts link): their secrets are stored encrypted with
        # Fernet/MultiFernet (authenticated encryption, key rotation) from the PyCA's maintained package.
        "cryptography>=42",
    ],
    extras_require={
        # server.event_loop: uvloop, a libuv-based asyncio loop (less CPU per socket event).
        "fast": ["uvloop>=0.19"],
        # The PNG plot of `portfolio-ws loadtest` (without it, the JSON report only).
        "loadtest": ["matplotlib>=3.7"],
        "test": [
            "pytest>=8",
            "pytest-tornasync>=0.6",
            "hypothesis>=6.100",
            "mypy>=1.10",
            "types-PyYAML",
            "websockets>=12",
            # Checks real traffic against the AsyncAPI/OpenAPI documents (tests/behaviour/test_api_docs.py).
            "jsonschema>=4.18",
            # The load tester's latency/throughput plot (tests/process/loadtest runs a small load test).
            "matplotlib>=3.7",
            # Browser tests (tests/process/browser) drive Debian's Chromium (apt-get install chromium) through
            # Playwright's own driver; never `playwright install`, no browser is downloaded.
            "playwright>=1.45",
            # serve with server.event_loop: uvloop is tested too.
            "uvloop>=0.19",
        ],
    },
    entry_points={"console_scripts": ["portfolio-ws=cli:main"]},
)
