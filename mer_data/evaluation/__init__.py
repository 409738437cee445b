"""Model-agnostic evaluation: one fold of any registered model under a named selection protocol (`fold.py`) and runs
side by side (`compare.py`). The LOSO orchestration (folds, resume, Ray, pooled metrics) is `pipelines/loso.py`."""
