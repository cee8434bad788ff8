"""What several ``hubstead serve`` processes share beyond the database rows of the domains: leases that elect
the one process running the stateful services, per-repo write locks that hold across processes and machines,
and failure counts that every process reads (docs/ARCHITECTURE.md, "Processes")."""
