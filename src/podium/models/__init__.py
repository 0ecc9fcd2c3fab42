"""Models: built-in architectures, features, weights (safetensors), training."""

__all__: list[str] = []
