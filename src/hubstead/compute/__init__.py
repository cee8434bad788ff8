"""Compute jobs: the Hub's Jobs API (``/api/jobs/{namespace}``), run on the one runner (``hubstead.runner``)."""
