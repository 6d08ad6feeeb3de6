"""Policy calculator: self-check, 免申即享 runs, notifications, what-if reforms."""
