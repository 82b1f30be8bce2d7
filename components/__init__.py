"""cdn-prefetch: keep declared CDN prefetch sets warm, and honest about it."""
