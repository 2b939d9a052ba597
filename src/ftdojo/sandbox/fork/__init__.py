"""Preloaded workers: jobs forked from a server that imported torch and friends once.

- :mod:`~ftdojo.sandbox.fork.server`: the server process (``python -m
  ftdojo.sandbox.fork.server``), which preloads the heavy modules and forks one job per
  request inside the job's own sandbox;
- :mod:`~ftdojo.sandbox.fork.client`: the job's stand-in at the end of the launch chain,
  standard library only, which asks the server for the job and ends as the job ended;
- :mod:`~ftdojo.sandbox.fork.handle`: the runner's handle on a running server (start it
  once per process, connect, stop).

Nothing is imported here: the server is run with ``-m`` and the client by path, and
neither may pay for what the other needs.
"""

__all__: list[str] = []
