"""Celery workers: the only package that joins the engine and the database.

Importing it (or :mod:`worker.celery_app`) never imports torch; task modules do that inside tasks.
"""
