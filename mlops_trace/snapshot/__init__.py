"""The Snapshot: everything a check may read, from an offline bundle or a live collection."""
