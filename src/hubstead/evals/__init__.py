"""Evaluation and leaderboards: benchmarks (dataset repos with an ``eval.yaml``), evaluation runs (compute jobs),
results as the Hub keeps them (``.eval_results/*.yaml`` and ``model-index``), and leaderboards computed from them."""
