"""Tools for developing Hubstead (the test suite and the benchmarks share them); the served app never imports
this package."""
