"""The ``adn`` command line: train, score, eval, explain, reproduce, demo, weights, elpv-layout."""

from engine.cli.main import main

__all__ = ["main"]
