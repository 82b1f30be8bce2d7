"""Cloud adapters: one per CDN, all behind the small interface in ``base``."""
