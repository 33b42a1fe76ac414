"""Layer 6: tables, plots and Markdown reports (presentation only; computations live below)."""
