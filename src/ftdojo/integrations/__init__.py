"""Bridges from ftdojo's run directories to other tools, each behind an optional extra.

Nothing here is imported by ``import ftdojo``; every third-party library is imported
inside the function that needs it.
"""
