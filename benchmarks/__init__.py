"""Cost benchmarks of the TWN encode pipeline (`python -m benchmarks.cost`); results in BENCHMARKS.md."""
