"""Model-card templates for TWN checkpoints (Jinja2, rendered by `twn_hf.cards.render_card`).

Installed, this folder is the package `twn_hf.hub_cards`; in a source checkout `twn_hf.cards` reads it directly.
"""
