"""The graph IR data model."""
