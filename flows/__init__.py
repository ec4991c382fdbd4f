"""Thin Prefect orchestration over ``pipeline``: tasks, retries, concurrency."""
