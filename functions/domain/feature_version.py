"""The version of the model features (functions/domain/features.py): change a feature -> bump it.

Its own numpy-free module so that the decision record, which carries it, can be read and sent
(dispatch, feedback, privacy) without importing numpy; features.py re-exports it.
"""

from __future__ import annotations

FEATURE_VERSION = "3"
