"""Benchmarks of lago_async against raw aiohttp and the official ``lago-python-client``.

``python -m benchmarks`` (or ``nox -s bench``) runs them; see :mod:`benchmarks.run`.
"""
