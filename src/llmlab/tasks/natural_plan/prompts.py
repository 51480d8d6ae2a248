"""Prompt templates for generated NATURAL PLAN instances.

The problem statements keep the official data's *structure* (the sentence shapes that the official
scorers and our constraint parsers read: ``European cities for N days``, ``Here are the cities that have
direct flights:``, ``CONSTRAINTS: You arrive at ...``, ``Here is the proposed time: Monday, 9:00 - 9:30``),
so one parser reads both the official files and ours. As in the official files, the 0-shot prompt is
the bare task and only the few-shot prompt opens with a preamble; preambles are our own wording.
"""

from __future__ import annotations

# -- trip planning -------------------------------------------------------------------------------------

TRIP_PREAMBLE = (
    "You are an expert trip planner. Each task lists the cities to visit, how many days to spend in "
    "each, fixed-day events, and which cities are linked by direct flights. The day you fly counts for "
    "both cities."
)
TRIP_HEAD = (
    "You plan to visit {k} European cities for {days} days in total. "
    "You only take direct flights to commute between cities."
)
# Stay and event sentences: ``{city}``, ``{n}`` (days), ``{a}``/``{b}`` (first/last day of the event).
TRIP_STAY_SENTENCES = (
    "You want to spend {n} days in {city}.",
    "You would like to visit {city} for {n} days.",
    "You plan to stay in {city} for {n} days.",
)
TRIP_EVENT_SENTENCES = (
    "You have to attend a workshop in {city} between day {a} and day {b}.",
    "You are going to attend a wedding in {city} between day {a} and day {b}.",
    "You want to meet a friend in {city} between day {a} and day {b}.",
    "You plan to visit relatives in {city} between day {a} and day {b}.",
    "From day {a} to day {b}, there is an annual show you want to attend in {city}.",
)
TRIP_FLIGHTS = "Here are the cities that have direct flights:\n{flights}."
TRIP_TAIL = "Find a trip plan of visiting the cities for {days} days by taking direct flights to commute between them."
TRIP_GOLDEN_HEAD = "Here is the trip plan for visiting the {k} European cities for {days} days:"

# -- meeting planning ----------------------------------------------------------------------------------

MEETING_PREAMBLE = (
    "You are an expert at planning a day of meetings. Each task gives travel times between places, where "
    "and when each friend is available, and how long you want to meet them."
)
MEETING_HEAD = (
    "You are visiting San Francisco for the day and want to meet as many friends as possible. Consider "
    "several schedules and pick the one that meets the most friends."
)
MEETING_DISTANCES = "Travel distances (in minutes):\n{rows}"
MEETING_ARRIVE = "CONSTRAINTS: You arrive at {location} at {time}."
MEETING_FRIEND = (
    "{name} will be at {location} from {start} to {end}. You'd like to meet {name} for a minimum of {minutes} minutes."
)

# -- calendar scheduling -------------------------------------------------------------------------------

CALENDAR_PREAMBLE = (
    "You are an expert at scheduling meetings. Each task gives the participants' existing meetings, the "
    "meeting length and possibly preferences about the time; a time that suits everyone exists."
)
CALENDAR_HEAD = (
    "You need to schedule a meeting for {people} for {length} between the work hours of {start} to {end} "
    "on {days}. "
)
CALENDAR_SCHEDULES = "Here are the existing schedules for everyone during the {period}: "
CALENDAR_BUSY_SENTENCES = (
    "{name} has meetings on {spans}; ",
    "{name} is busy on {spans}; ",
    "{name} has blocked their calendar on {spans}; ",
)
CALENDAR_FREE_SENTENCES = (
    "{name} is free the entire day.",
    "{name} has no meetings the whole day.",
    "{name}'s calendar is wide open the entire day.",
)
CALENDAR_AVOID_DAY = "{name} does not want to meet on {day}. "
CALENDAR_AVOID_BEFORE = "{name} would rather not meet on {day} before {time}. "
CALENDAR_AVOID_AFTER = "{name} can not meet on {day} after {time}. "
CALENDAR_EARLIEST = "The group would like to meet at their earliest availability. "
CALENDAR_TAIL = "Find a time that works for everyone's schedule and constraints. "
CALENDAR_GOLDEN = "Here is the proposed time: {day}, {start} - {end} "

# -- shared --------------------------------------------------------------------------------------------

FEWSHOT_INTRO = "Here are a few example tasks and solutions:"
SHOT = "TASK: {task}\n\nSOLUTION: {solution}"
QUERY = "TASK: {task}\n\nSOLUTION:"
