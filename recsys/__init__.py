"""fairrec's library: data, models, re-rankers, explainers and serving.

Nothing here logs to MLflow or performs hidden I/O; orchestration lives in
``training``.
"""

__version__ = "0.1.0"
