"""What the user wrote, validated and normalised: declaration files, zoneName/domain references,
origin bucket listings. Never imports an adapter."""
