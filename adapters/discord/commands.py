"""The slash commands: one app command per learner command, with autocomplete where typing is hard.

Every callback only hands its options to the runner, which acknowledges the interaction at once and
lets the core answer; nothing here knows about courses or learners. The instructor commands exist only in
servers and only members with Manage Server see them; the core still decides who may run them.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from adapters.discord.translate import SlashCommand
from bot.admin_conversation import ADMIN_COMMANDS
from bot.conversation import CADENCE_CHOICES, LEARNER_COMMANDS
from bot.discussion_admin import THREAD_COMMANDS

CommandRunner = Callable[[discord.Interaction, SlashCommand, dict[str, object]], Awaitable[None]]
InstructorRunner = Callable[[discord.Interaction, str, str], Awaitable[None]]
"""(interaction, the core's command name, its arguments as typed)."""
ChoiceSource = Callable[[str], Sequence[tuple[str, str]]]
"""What was typed so far -> (label, value) suggestions, best first."""

MAX_CHOICES = 25
MAX_CHOICE_TEXT = 100

_DESCRIPTIONS = dict(LEARNER_COMMANDS)
INSTRUCTOR_COMMANDS: tuple[tuple[str, str], ...] = (*ADMIN_COMMANDS, *THREAD_COMMANDS)
INSTRUCTOR_PERMISSIONS = discord.Permissions(manage_guild=True)
_COURSE = "The course, if you take more than one"


def describe(command: SlashCommand) -> str:
    if command is SlashCommand.ENROLL:
        return "Enrol in a course (or see the courses you can take)"
    return _DESCRIPTIONS.get(command.value, command.value)[:100]


def _choices(source: ChoiceSource, typed: str) -> list[app_commands.Choice[str]]:
    return [
        app_commands.Choice(name=label[:MAX_CHOICE_TEXT], value=value[:MAX_CHOICE_TEXT])
        for label, value in list(source(typed))[:MAX_CHOICES]
    ]


def build_command_tree(
    client: discord.Client,
    run: CommandRunner,
    *,
    courses: ChoiceSource,
    zones: ChoiceSource,
    times: ChoiceSource,
    run_instructor: InstructorRunner | None = None,
) -> app_commands.CommandTree[discord.Client]:
    """The tree of learner commands for `client`, usable in servers and in a DM with the bot, and with
    `run_instructor` the instructor commands, in servers only and shown to managers only."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(
        client, allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True)
    )

    async def course_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(courses, current)

    async def zone_names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(zones, current)

    async def time_values(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(times, current)

    @tree.command(name=SlashCommand.ENROLL.value, description=describe(SlashCommand.ENROLL))
    @app_commands.describe(course="The course to take; leave empty to see them all")
    @app_commands.autocomplete(course=course_names)
    async def enroll(interaction: discord.Interaction, course: str = "") -> None:
        await run(interaction, SlashCommand.ENROLL, {"course": course})

    @tree.command(name=SlashCommand.LANGUAGE.value, description=describe(SlashCommand.LANGUAGE))
    @app_commands.describe(language="A language code such as en or de")
    async def language(interaction: discord.Interaction, language: str = "") -> None:
        await run(interaction, SlashCommand.LANGUAGE, {"language": language})

    @tree.command(name=SlashCommand.TIMEZONE.value, description=describe(SlashCommand.TIMEZONE))
    @app_commands.describe(zone="A city, a zone such as Europe/Berlin, or an offset such as +5:30")
    @app_commands.autocomplete(zone=zone_names)
    async def timezone(interaction: discord.Interaction, zone: str = "") -> None:
        await run(interaction, SlashCommand.TIMEZONE, {"zone": zone})

    @tree.command(name=SlashCommand.TIME.value, description=describe(SlashCommand.TIME))
    @app_commands.describe(at="Your local time, such as 08:00, 7:30 or 8pm", course=_COURSE)
    @app_commands.autocomplete(at=time_values, course=course_names)
    async def time(interaction: discord.Interaction, at: str = "", course: str = "") -> None:
        await run(interaction, SlashCommand.TIME, {"at": at, "course": course})

    @tree.command(name=SlashCommand.PACE.value, description=describe(SlashCommand.PACE))
    @app_commands.describe(
        every="How often lessons arrive",
        custom="Any other pace: tue,thu or every-3-days",
        course=_COURSE,
    )
    @app_commands.choices(
        every=[app_commands.Choice(name=label, value=value) for label, value in CADENCE_CHOICES]
    )
    @app_commands.autocomplete(course=course_names)
    async def pace(
        interaction: discord.Interaction, every: str = "", custom: str = "", course: str = ""
    ) -> None:
        await run(interaction, SlashCommand.PACE, {"every": every, "custom": custom, "course": course})

    @tree.command(name=SlashCommand.PAUSE.value, description=describe(SlashCommand.PAUSE))
    @app_commands.describe(
        until="Days (such as 3) or a date (2026-12-24); empty pauses until /resume", course=_COURSE
    )
    @app_commands.autocomplete(course=course_names)
    async def pause(interaction: discord.Interaction, until: str = "", course: str = "") -> None:
        await run(interaction, SlashCommand.PAUSE, {"until": until, "course": course})

    def course_command(command: SlashCommand) -> None:
        @app_commands.describe(course=_COURSE)
        @app_commands.autocomplete(course=course_names)
        async def callback(interaction: discord.Interaction, course: str = "") -> None:
            await run(interaction, command, {"course": course})

        tree.add_command(
            app_commands.Command(name=command.value, description=describe(command), callback=callback)
        )

    def plain_command(command: SlashCommand) -> None:
        async def callback(interaction: discord.Interaction) -> None:
            await run(interaction, command, {})

        tree.add_command(
            app_commands.Command(name=command.value, description=describe(command), callback=callback)
        )

    for command in (SlashCommand.RESUME, SlashCommand.NEXT, SlashCommand.REPEAT, SlashCommand.STOP):
        course_command(command)
    for command in (
        SlashCommand.COURSES,
        SlashCommand.SCHEDULE,
        SlashCommand.PROGRESS,
        SlashCommand.SETTINGS,
        SlashCommand.HELP,
        SlashCommand.REVIEW,
        SlashCommand.CALENDAR,
        SlashCommand.MYDATA,
        SlashCommand.FORGETME,
    ):
        plain_command(command)
    if run_instructor is not None:
        for name, description in INSTRUCTOR_COMMANDS:
            tree.add_command(_instructor_command(name, description, run_instructor))
    return tree


def _instructor_command(
    name: str, description: str, run: InstructorRunner
) -> app_commands.Command[Any, Any, None]:
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.default_permissions(INSTRUCTOR_PERMISSIONS)
    @app_commands.describe(arguments="What follows the command, as /admin lists it")
    async def callback(interaction: discord.Interaction, arguments: str = "") -> None:
        await run(interaction, name, arguments)

    return app_commands.Command(name=name, description=description[:100], callback=callback)
