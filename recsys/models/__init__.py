"""Recommenders: one scikit-learn-style estimator contract, chosen by registry key.

Every model is a :class:`Recommender`: ``fit(X)`` on a user x item CSR matrix,
then batched ``recommend(users, k)`` returning ``[n_users, k]`` ids and scores.
"""

from recsys.models._base import Recommender, check_fitted, check_user_items, top_k
from recsys.models._bpr import BPR
from recsys.models._ease import EASE
from recsys.models._implicit import ALS, ItemKNN
from recsys.models._io import load_model, save_model
from recsys.models._popularity import Popularity
from recsys.models._registry import MODELS, make_model, model_key
from recsys.models._spark_als import SparkALS, SparkPopularity, als_serving_model  # pyspark imported lazily

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODELS",
    "ItemKNN",
    "Popularity",
    "Recommender",
    "SparkALS",
    "SparkPopularity",
    "als_serving_model",
    "check_fitted",
    "check_user_items",
    "load_model",
    "make_model",
    "model_key",
    "save_model",
    "top_k",
]
