"""No-code fine-tuning: a train run is a compute job running ``python -m hubstead.train.program`` with its spec.

The pure modules (``spec``, ``metrics``, ``chart``, ``card``, ``scores``) import neither torch nor transformers; only
``program`` and ``tasks_*`` do, and only the job process imports them.
"""
