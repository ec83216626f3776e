"""Feature engineering for the fraud example (specs/prod.toml): raw JSON transactions →
the scorer's 64 features. ``enrich.Enricher`` is the pipeline's ``python`` step;
``synthetic`` generates labelled transactions to train the scorer on."""
