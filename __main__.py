"""cdn-prefetch: keep declared CDN prefetch sets warm. See README.md."""

from components.program import main

main()
