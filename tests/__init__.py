"""Fidelio's tests. A regular package on purpose: a wheel in the environment (smdebug_rulesconfig,
pulled in by the SageMaker SDK) installs a top-level `tests` package that would otherwise
shadow this directory in `from tests.conftest import ...`."""
