"""Prefect flows, one per file; each is a thin layer over plain csflow functions."""
