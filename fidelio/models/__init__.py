"""Model training (build time only: scipy, pandas, LightGBM; never imported by a Lambda)."""
