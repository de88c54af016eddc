"""The timetable (课表): its parser, the sans-IO planner and the scheduler that acts through the command table."""
