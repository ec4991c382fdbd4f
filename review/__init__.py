"""The review queue: pages in a database, a browser UI to correct them, exports out.

``store`` holds the tables and the repository API, ``ingest`` puts pages in,
``app`` serves the UI and the JSON API, ``export`` writes records out.
"""
