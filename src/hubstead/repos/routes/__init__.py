"""The repo API's HTTP routes (thin handlers over ``repos``' services) and ``access``, what every repo-scoped
route does first (the repo type and id from the raw path, the caller, the repo)."""
