"""Figures of models at work (matplotlib, headless)."""
