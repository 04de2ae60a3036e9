"""Networks as batched objectives: datasets, models, and their losses over parameter
vectors."""
