"""formscan's pure stages: document -> pages -> grid -> cell text -> record -> flags.

Nothing here imports Prefect: every stage is a typed function usable as a library.
"""
