"""The benchmark behind `make bench` (issue 8): `python -m bench` writes bench/results.md."""
