"""engine.save / engine.load: checkpoints as safetensors plus JSON structure (never pickle)."""


def save(obj, f, **kwargs):
    raise NotImplementedError("engine.save is not implemented yet")


def load(f, map_location=None, **kwargs):
    raise NotImplementedError("engine.load is not implemented yet")
