"""The engine for any batched objective: minima, min-max paths, saddles and their
certificates, the H0 barcode, and analytic landscapes with exact answers."""
