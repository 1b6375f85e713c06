"""Provider sources: one module per wire API (transport shell + pure normaliser + error map)."""
