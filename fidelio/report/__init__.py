"""Measuring a demo run: lift against the holdout, off-policy estimates, fairness, the report."""
