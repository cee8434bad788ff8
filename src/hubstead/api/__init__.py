"""HTTP plumbing shared by every domain's routes: dependencies, raw-path parsing, error mapping."""
