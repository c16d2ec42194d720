"""Hub integration: load any checkpoint as a feature extractor (and, later, push with model cards)."""

from hfssl.hub.feature_extractor import ExtractorInfo, FeatureExtractor
from hfssl.hub.load_any import load_feature_extractor

__all__ = ["ExtractorInfo", "FeatureExtractor", "load_feature_extractor"]
