from recsys.errors import DataError

__all__ = ["DataError"]
