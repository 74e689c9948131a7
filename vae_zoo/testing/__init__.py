"""The shared test harness every zoo model runs through (imports pytest: for tests only)."""
