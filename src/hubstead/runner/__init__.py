"""The one runner of work outside the hub process: spaces, jobs (dataset conversion today), later training and
evaluation. ``limits`` (what a process may use), ``cgroups`` (the kernel's enforcement where the host allows it),
``sandbox`` (bubblewrap: what a process may see), ``process`` (start, watch, stop, word how it ended)."""
