"""Job entry points: `ray job submit -- python rayjobs/<job>.py --config rayjobs/configs/<name>.yaml`."""
