"""The delivery engine: the release planner, the heartbeat and announcements (APScheduler wiring)."""
