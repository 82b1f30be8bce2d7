"""A fake fourth cloud, registered only by tests/test_fourth_cloud.py: adapter, registry entry, emulator."""
