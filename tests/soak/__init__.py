"""The soak: a thousand faults or more in one sitting, each followed by a run that must end exact.

Run it with `make soak` (not part of `make test`); it writes `bench/results/soak.md`.
"""
