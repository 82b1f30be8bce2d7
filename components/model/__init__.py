"""Values every layer shares: statuses and history rows, URLs, durations, quota, policy, connections,
and the registry of clouds. No I/O and no imports from the layers above."""
