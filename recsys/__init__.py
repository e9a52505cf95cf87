"""fairrec's library: data, models, re-rankers, explainers and serving.

Nothing here logs to MLflow or performs hidden I/O; orchestration lives in
``training``.
"""

__version__ = "0.1.0"

from recsys._redact import redact_text, redact_uri

__all__ = ["redact_text", "redact_uri"]
