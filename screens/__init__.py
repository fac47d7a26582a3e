"""The Textual wizard: one Screen per install step, over the engine in ``installer``."""
