"""Images: the content-addressed store and safe layer extraction."""

from runtime.images.extract import UnsafeArchive, extract_layer
from runtime.images.store import Image, ImageStore, parse_ref

__all__ = ["Image", "ImageStore", "UnsafeArchive", "extract_layer", "parse_ref"]
