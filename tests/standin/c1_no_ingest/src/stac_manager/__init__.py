"""Stand-in for stac-manager."""
