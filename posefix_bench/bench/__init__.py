"""Layer 6: the bench runner that ties the configs in ``ablations/`` and the cards in ``estimators/`` together."""
