"""Benchmarks of the AttentDifferNet engine: ELPV quality, baselines, ablations, speed, GPU runs.

Every script writes a Markdown table into ``bench/results/`` (or where ``--out`` says) carrying the
date, machine, versions, exact command and settings. Run them from the repository root, e.g.
``python -m bench.speed``.
"""
