"""The schedules' implementation; the public names are in `jopt.schedules`."""
