"""The benchmark suite: `scripts/bench.sh` (see docs/PERFORMANCE.md). Not part of the test run."""
