"""Turn people into cartoons and anime characters: three small PyTorch model families.

    from cartoon import load_model
    generator = load_model("whitebox")     # or "acgan", "twingan"

Each family lives in its own subpackage (`cartoon.whitebox`, `cartoon.acgan`, `cartoon.twingan`)
with its model, training script and a small inference API; `cartoon.faces` finds and aligns faces,
`cartoon.images` reads whatever a user uploads, `cartoon.hub` decides where weights come from.
"""

from cartoon.hub import load_model

__all__ = ["load_model"]
