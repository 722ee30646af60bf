"""The Discord adapter at discord.py's HTTP seam: a fake Discord REST API on loopback, never discord.com."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import discord
import pytest
from pydantic import SecretStr

from adapters.discord import DiscordAdapter
from bot.content import MediaKind
from bot.ports import (
    AmbiguousError,
    Button,
    ButtonPressed,
    ChatMigrated,
    Command,
    InboundEvent,
    MediaPart,
    PermanentError,
    Reply,
    RetryAfter,
    TextPart,
    TextReceived,
    TransientError,
)
from bot.settings import DiscordSettings
from scheduler.pacer import discord_pacer
from tests.conftest import SAMPLE_COURSES
from tests.discord_harness.clock import DiscreteTime
from tests.discord_harness.interactions import (
    Learner,
    Place,
    autocomplete,
    button_press,
    deliver,
    deliver_message,
    direct_message,
    slash_command,
)
from tests.discord_harness.rest import FakeDiscord, RouteBucket, button_ids, text_of
from tests.test_pacer import VirtualTime, max_in_window

GUILD = 555_000_000_000_000_001
LOBBY = 555_000_000_000_000_002
FALLBACK = 555_000_000_000_000_003
ADA = 111_000_000_000_000_001

Handler = Callable[[InboundEvent], Awaitable[Reply]]


class Core:
    """Stands in for the conversation: records events and answers each with a fixed reply."""

    def __init__(self, fake: FakeDiscord, reply: Reply | None = None) -> None:
        self.fake = fake
        self.events: list[InboundEvent] = []
        self.callbacks_seen: list[int] = []
        self.reply = reply or Reply((TextPart("Noted."),))

    async def handle(self, event: InboundEvent) -> Reply:
        self.events.append(event)
        self.callbacks_seen.append(len(self.fake.callbacks))
        return self.reply


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    server.add_guild_channel(LOBBY, GUILD, {ADA})
    server.add_guild_channel(FALLBACK, GUILD, {ADA})
    server.add_user(ADA, "ada")
    yield server
    await server.close()


@pytest.fixture
async def launch(fake: FakeDiscord) -> AsyncIterator[Callable[..., Awaitable[DiscordAdapter]]]:
    """Start an adapter against the fake (settings overridable); every one is stopped afterwards."""
    started: list[DiscordAdapter] = []

    async def start(
        core: Core | None = None,
        virtual: VirtualTime | DiscreteTime | None = None,
        request_timeout: float = 5.0,
        **overrides: Any,
    ) -> DiscordAdapter:
        values: dict[str, Any] = {
            "token": SecretStr("test-token"),
            "api_base_url": fake.base_url,
            "guild_ids": [GUILD],
            "fallback_channel_id": FALLBACK,
            **overrides,
        }
        clock = virtual or VirtualTime()
        adapter = DiscordAdapter(
            DiscordSettings.model_validate(values),
            courses_root=SAMPLE_COURSES,
            gateway=False,
            request_timeout=request_timeout,
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        await adapter.start((core or Core(fake)).handle)
        started.append(adapter)
        return adapter

    yield start
    for adapter in reversed(started):
        await adapter.stop()
    assert discord.http.Route.BASE == "https://discord.com/api/v10"


async def open_dm(adapter: DiscordAdapter, user_id: int = ADA) -> str:
    """The chat id of the user's DM, opened through the adapter as the sender would."""
    with pytest.raises(ChatMigrated) as moved:
        await adapter.send(f"dm:{user_id}", TextPart("hello"), idempotency_key="open")
    return moved.value.new_chat_id


# --- login, commands, interactions ------------------------------------------------------------------


async def test_commands_are_published_to_each_server_and_globally_when_asked(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    await launch(guild_ids=[GUILD, 777], sync_global=True)
    assert set(fake.commands) == {str(GUILD), "777", "global"}
    commands = {command["name"]: command for command in fake.commands[str(GUILD)]}
    learner_commands = {
        name for name, command in commands.items() if not command.get("default_member_permissions")
    }
    assert learner_commands == {
        "enroll", "courses", "timezone", "time", "pace", "schedule", "progress", "settings", "pause",
        "resume", "next", "repeat", "stop", "help", "review", "calendar", "language", "mydata", "forgetme",
    }  # fmt: skip
    options = {option["name"]: option for option in commands["enroll"]["options"]}
    assert options["course"]["autocomplete"] is True
    zone = commands["timezone"]["options"][0]
    assert zone["name"] == "zone"
    assert zone["autocomplete"] is True
    every = next(option for option in commands["pace"]["options"] if option["name"] == "every")
    assert [choice["value"] for choice in every["choices"]] == [
        "daily",
        "weekdays",
        "mon,wed,fri",
        "every-2-days",
    ]
    assert commands["help"]["contexts"] == [0, 1]


async def test_an_interaction_is_acknowledged_before_the_core_runs_and_answered_privately_in_a_server(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    core = Core(fake, Reply((TextPart("Paused."),)))
    adapter = await launch(core)
    ada = Learner(ADA, "ada", Place(LOBBY, GUILD))
    await deliver(adapter.client, slash_command(ada, "pause", course="async-learning", until="3"))

    assert core.callbacks_seen == [1]  # the defer reached Discord before the core saw the event
    assert fake.callbacks == [
        {
            "interaction_id": fake.callbacks[0]["interaction_id"],
            "token": ada.tokens[0],
            "type": 5,
            "data": {"flags": 64},
        }
    ]
    [event] = core.events
    assert isinstance(event, Command)
    assert (event.name, event.args) == ("pause", "async-learning 3")
    assert event.sender.chat_id == f"dm:{ADA}"
    assert event.sender.is_private is False
    assert event.sender.language_code == "en-US"
    [answer] = fake.followups[ada.tokens[0]]
    assert answer["content"] == "Paused."
    assert answer["flags"] == 64


async def test_in_the_bot_dm_the_sender_carries_the_dm_channel_and_answers_stay_visible(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    core = Core(fake)
    adapter = await launch(core)
    ada = Learner(ADA, "ada", Place(424242))
    fake.channels[424242] = {"id": "424242", "type": 1, "recipients": [fake.users[ADA]]}
    await deliver(adapter.client, slash_command(ada, "enroll", course="async-learning"))

    [event] = core.events
    assert event == Command(event.sender, "start", "async-learning")
    assert event.sender.chat_id == f"dm:{ADA}:424242"
    assert event.sender.is_private is True
    assert fake.callbacks[0]["type"] == 5
    assert not fake.callbacks[0].get("data", {}).get("flags")
    assert fake.followups[ada.tokens[0]][0]["flags"] == 0
    # The DM channel is known now: a reply outside the interaction needs no DM to be opened.
    await adapter.send_reply(event.sender, Reply((TextPart("By the way"),)))
    assert fake.calls("POST", r"/users/@me/channels") == []
    assert [m["content"] for m in fake.sent_to(424242)] == ["By the way"]


async def test_autocomplete_suggests_time_zones_cities_and_courses(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    adapter = await launch()
    ada = Learner(ADA, "ada", Place(LOBBY, GUILD))
    await deliver(adapter.client, autocomplete(ada, "timezone", "zone", "sao pa"))
    await deliver(adapter.client, autocomplete(ada, "enroll", "course", "own clock"))

    zones, courses = fake.callbacks
    assert zones["type"] == 8
    assert "America/Sao_Paulo" in [choice["value"] for choice in zones["data"]["choices"]]
    assert len(zones["data"]["choices"]) <= 25
    assert courses["data"]["choices"] == [{"name": "Learning on your own clock", "value": "async-learning"}]


async def test_a_button_on_a_message_sent_before_a_restart_reaches_the_core(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    first = await launch()
    chat = await open_dm(first)
    await first.send(chat, TextPart("Lesson", (Button("✅ Done", "done:42"),)), idempotency_key="7.0")
    [lesson] = fake.sent_to(int(chat.rsplit(":", 1)[1]))
    await first.stop()

    core = Core(fake, Reply((TextPart("Marked as done."),)))
    second = await launch(core)
    await deliver(
        second.client, button_press(Learner(ADA, "ada", Place(int(lesson["channel_id"]))), "done:42", lesson)
    )
    [event] = core.events
    assert event == ButtonPressed(event.sender, "done:42", lesson["id"])
    assert core.callbacks_seen == [1]


async def test_text_typed_in_the_bot_dm_reaches_the_core_and_is_answered_there(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    core = Core(fake, Reply((TextPart("Time zone set."),)))
    adapter = await launch(core)
    ada = Learner(ADA, "ada", Place(424242))
    fake.channels[424242] = {"id": "424242", "type": 1, "recipients": [fake.users[ADA]]}
    await deliver_message(adapter.client, direct_message(ada, "Berlin"))
    await deliver_message(adapter.client, direct_message(ada, "/help"))

    text, command = core.events
    assert text == TextReceived(text.sender, "Berlin")
    assert text.sender.chat_id == f"dm:{ADA}:424242"
    assert command == Command(command.sender, "help", "")
    answers = fake.calls("POST", r"/channels/424242/messages")
    assert [request.body["content"] for request in answers] == ["Time zone set.", "Time zone set."]


# --- sending ----------------------------------------------------------------------------------------


async def test_opening_a_dm_moves_the_learner_once_and_every_send_carries_a_stable_nonce(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    virtual = VirtualTime()
    adapter = await launch(virtual=virtual)
    chat = await open_dm(adapter)
    dm = fake.dm_channel_of(ADA)
    assert chat == f"dm:{ADA}:{dm}"

    part = TextPart("Lesson body", (Button("✅ Done", "done:5"),), title="Lesson 1 of 8 · Welcome")
    first = await adapter.send(chat, part, idempotency_key="5.0")
    again = await adapter.send(chat, part, idempotency_key="5.0")  # a resend after a lost answer
    other = await adapter.send(chat, TextPart("Part two"), idempotency_key="5.1")

    assert first.message_ids == again.message_ids
    assert other.message_ids != first.message_ids
    assert dm is not None
    assert [text_of(m) for m in fake.sent_to(dm)] == ["Lesson 1 of 8 · Welcome\nLesson body", "Part two"]
    posts = fake.calls("POST", rf"/channels/{dm}/messages")
    assert len(posts) == 3
    assert all(post.body["enforce_nonce"] is True and 0 < len(post.body["nonce"]) <= 25 for post in posts)
    assert posts[0].body["nonce"] == posts[1].body["nonce"] != posts[2].body["nonce"]
    assert button_ids(fake.sent_to(dm)[0]) == [("✅ Done", "done:5")]
    assert len(fake.calls("POST", r"/users/@me/channels")) == 1
    assert virtual.now == 0.0  # the adapter itself never waited


async def test_an_edit_patches_the_message_in_place_and_a_deleted_one_is_a_permanent_error(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    adapter = await launch()
    chat = await open_dm(adapter)
    dm = int(chat.rsplit(":", 1)[1])
    status = TextPart("Broadcast #1: 0 of 2 sent", (Button("Cancel", "bcast:1:cancel"),))
    (message_id,) = (await adapter.send(chat, status, idempotency_key="s")).message_ids
    final = TextPart("Broadcast #1 finished: 2 of 2 sent")
    await adapter.edit(chat, message_id, final)
    await adapter.edit(f"dm:{ADA}", message_id, final)  # the DM channel is remembered; no change is fine
    (message,) = fake.sent_to(dm)
    assert (message["id"], text_of(message), button_ids(message)) == (message_id, final.text, [])
    assert message["edited_timestamp"] is not None
    patches = fake.calls("PATCH", rf"/channels/{dm}/messages/{message_id}")
    assert [patch.body["content"] for patch in patches] == [final.text, final.text]
    assert patches[0].body["allowed_mentions"] == {"parse": []}
    assert len(fake.calls("POST", r"/users/@me/channels")) == 1

    fake.delete_message(dm, message_id)
    with pytest.raises(PermanentError) as gone:
        await adapter.edit(chat, message_id, TextPart("Broadcast #1: 1 of 2 sent"))
    assert "Unknown Message" in gone.value.reason
    assert not gone.value.unreachable
    with pytest.raises(PermanentError):
        await adapter.edit(chat, "not-a-message-id", final)


async def test_dm_opens_are_spaced_below_discords_limit(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    virtual = DiscreteTime()
    fake.clock = virtual.monotonic
    users = [ADA + offset for offset in range(1, 5)]
    for user in users:
        fake.add_user(user, f"learner{user % 100}")
    adapter = await launch(virtual=virtual, dm_opens_per_minute=2)

    await virtual.gather(*(open_dm(adapter, user) for user in users))
    opens = [request.at for request in fake.calls("POST", r"/users/@me/channels")]
    assert opens == [0.0, 30.0, 60.0, 90.0]


async def test_paced_by_the_sender_requests_reach_discord_at_the_global_rate(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    virtual = DiscreteTime()
    fake.clock = virtual.monotonic
    adapter = await launch(virtual=virtual, requests_per_second=5)
    settings = DiscordSettings(token=SecretStr("t"), requests_per_second=5)
    pacer = discord_pacer(settings, monotonic=virtual.monotonic, sleep=virtual.sleep)
    channels = [700 + index for index in range(3)]
    for channel in channels:
        fake.channels[channel] = {"id": str(channel), "type": 0, "guild_id": str(GUILD), "name": "c"}

    async def deliver_lessons(channel: int) -> None:
        for index in range(8):
            await pacer.acquire(str(channel))
            await adapter.send(str(channel), TextPart(f"part {index}"), idempotency_key=f"{channel}.{index}")

    await virtual.gather(*(deliver_lessons(channel) for channel in channels))
    posts = [request.at for request in fake.calls("POST", r"/channels/\d+/messages")]
    assert len(posts) == 24  # one request per paced slot: the adapter adds none
    assert max_in_window(posts, 1.0) == 5
    assert virtual.now == pytest.approx(23 / 5)


async def test_discord_py_keeps_its_route_buckets(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    adapter = await launch()
    chat = await open_dm(adapter)
    fake.route_bucket = RouteBucket(limit=2, per_seconds=0.15)
    for index in range(6):
        await adapter.send(chat, TextPart(f"part {index}"), idempotency_key=f"9.{index}")
    assert fake.served_429s == 0  # discord.py waited on the bucket's headers instead of running into 429s
    assert len(fake.sent_to(int(chat.rsplit(":", 1)[1]))) == 6


async def test_a_short_429_is_waited_out_on_its_route_and_the_send_succeeds(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    adapter = await launch()
    chat = await open_dm(adapter)
    dm = chat.rsplit(":", 1)[1]
    fake.rate_limit("POST", rf"/channels/{dm}/messages", 0.05)
    sent = await adapter.send(chat, TextPart("hello"), idempotency_key="3.0")
    assert len(sent.message_ids) == 1
    assert fake.served_429s == 1
    assert len(fake.calls("POST", rf"/channels/{dm}/messages")) == 2


@pytest.mark.parametrize(("scope", "whole_bot"), [("user", False), ("shared", False), ("global", True)])
async def test_a_long_429_comes_back_as_retry_after_for_the_chat_or_the_whole_bot(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]], scope: str, whole_bot: bool
) -> None:
    adapter = await launch()
    chat = await open_dm(adapter)
    fake.rate_limit("POST", rf"/channels/{chat.rsplit(':', 1)[1]}/messages", 45.0, scope=scope)
    with pytest.raises(RetryAfter) as limited:
        await adapter.send(chat, TextPart("hello"), idempotency_key="3.0")
    assert limited.value.seconds == 45.0
    assert limited.value.chat_id == (None if whole_bot else chat)


async def test_server_errors_and_lost_connections_are_transient_and_a_timeout_is_ambiguous(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    adapter = await launch(request_timeout=0.3)
    chat = await open_dm(adapter)
    dm = chat.rsplit(":", 1)[1]
    fake.fail("POST", rf"/channels/{dm}/messages", 503, message="upstream unavailable")
    with pytest.raises(TransientError):
        await adapter.send(chat, TextPart("hello"), idempotency_key="1.0")

    fake.fail("POST", rf"/channels/{dm}/messages", 200, delay=0.6)
    with pytest.raises(AmbiguousError, match="may have arrived"):
        await adapter.send(chat, TextPart("hello"), idempotency_key="1.0")

    await fake.close()
    with pytest.raises(TransientError, match="connection"):
        await adapter.send(chat, TextPart("hello"), idempotency_key="1.0")


@pytest.mark.parametrize(
    ("status", "code", "unreachable"),
    [(404, 10003, True), (404, 10013, True), (403, 50007, True), (400, 50035, False), (403, 50013, False)],
)
async def test_permanent_failures_say_whether_the_learner_is_gone(
    fake: FakeDiscord,
    launch: Callable[..., Awaitable[DiscordAdapter]],
    status: int,
    code: int,
    unreachable: bool,
) -> None:
    adapter = await launch(fallback_channel_id=None)
    chat = await open_dm(adapter)
    fake.fail("POST", r"/channels/\d+/messages", status, code=code)
    with pytest.raises(PermanentError) as failed:
        await adapter.send(chat, TextPart("hello"), idempotency_key="1.0")
    assert failed.value.unreachable is unreachable


async def test_closed_dms_without_a_fallback_channel_leave_the_learner_unreachable(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    fake.dms_closed.add(ADA)
    adapter = await launch(fallback_channel_id=None)
    chat = await open_dm(adapter)
    with pytest.raises(PermanentError) as failed:
        await adapter.send(chat, TextPart("hello"), idempotency_key="1.0")
    assert failed.value.unreachable is True
    assert fake.threads() == []


async def test_closed_dms_move_the_learner_to_a_private_thread_with_one_notice(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    fake.dms_closed.add(ADA)
    adapter = await launch()
    chat = await open_dm(adapter)
    with pytest.raises(ChatMigrated) as moved:
        await adapter.send(chat, TextPart("Lesson"), idempotency_key="2.0")
    [thread] = fake.threads()
    assert moved.value.new_chat_id == f"thread:{ADA}:{thread['id']}"
    assert (thread["type"], thread["invitable"], thread["parent_id"]) == (12, False, str(FALLBACK))
    assert thread["name"] == "Lessons for Ada"
    await adapter.send(moved.value.new_chat_id, TextPart("Lesson"), idempotency_key="2.0")
    notice, lesson = fake.sent_to(int(thread["id"]))
    assert notice["content"].startswith(f"<@{ADA}> I could not send you a direct message")
    assert lesson["content"] == "Lesson"


async def test_dms_opened_too_fast_fall_back_to_a_thread_and_hold_further_opens(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    virtual = DiscreteTime()
    fake.clock = virtual.monotonic
    fake.add_user(ADA + 1, "bo")
    fake.members[GUILD].add(ADA + 1)
    adapter = await launch(virtual=virtual)
    fake.fail(
        "POST", r"/users/@me/channels", 400, code=40003, message="You are opening direct messages too fast."
    )
    with pytest.raises(ChatMigrated) as moved:
        await adapter.send(f"dm:{ADA}", TextPart("Lesson"), idempotency_key="2.0")
    assert moved.value.new_chat_id.startswith(f"thread:{ADA}:")
    await open_dm(adapter, ADA + 1)
    first, second = (request.at for request in fake.calls("POST", r"/users/@me/channels"))
    assert second - first >= 60.0


async def test_an_archived_fallback_thread_is_reopened_for_the_next_lesson(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]]
) -> None:
    fake.dms_closed.add(ADA)
    adapter = await launch()
    with pytest.raises(ChatMigrated) as moved:
        await adapter.send(await open_dm(adapter), TextPart("Lesson"), idempotency_key="2.0")
    thread_id = int(moved.value.new_chat_id.rsplit(":", 1)[1])
    fake.channels[thread_id]["thread_metadata"]["archived"] = True
    await adapter.send(moved.value.new_chat_id, TextPart("Lesson 2"), idempotency_key="3.0")
    assert fake.channels[thread_id]["thread_metadata"]["archived"] is False
    assert fake.sent_to(thread_id)[-1]["content"] == "Lesson 2"


async def test_media_is_attached_and_a_file_over_the_limit_goes_as_a_link(
    fake: FakeDiscord, launch: Callable[..., Awaitable[DiscordAdapter]], tmp_path: Path
) -> None:
    small = tmp_path / "course" / "media" / "chart.png"
    small.parent.mkdir(parents=True)
    small.write_bytes(b"\x89PNG chart")
    big = small.parent / "lecture.mp4"
    with big.open("wb") as handle:  # sparse: 11 MiB on paper, nothing on disk
        handle.truncate(11 * 1024 * 1024)
    adapter = await launch(media_base_url="https://media.example.org/courses")
    assert adapter.capabilities.max_upload_bytes > 11 * 1024 * 1024
    chat = await open_dm(adapter)
    dm = chat.rsplit(":", 1)[1]

    await adapter.send(chat, MediaPart(MediaKind.IMAGE, small, caption="The chart"), idempotency_key="4.0")
    await adapter.send(chat, MediaPart(MediaKind.VIDEO, big, caption="The lecture"), idempotency_key="4.1")
    upload, link = fake.calls("POST", rf"/channels/{dm}/messages")
    assert upload.files == [("chart.png", b"\x89PNG chart")]
    assert upload.body["content"] == "The chart"
    assert link.files == []
    assert link.body["content"].startswith("The lecture\n📎 lecture.mp4: <https://media.example.org/courses/")
    assert link.body["content"].endswith("lecture.mp4>")

    with pytest.raises(PermanentError, match="cannot read"):
        await adapter.send(chat, MediaPart(MediaKind.IMAGE, tmp_path / "gone.png"), idempotency_key="4.2")


async def test_auto_sharded_client_when_shards_are_configured(
    launch: Callable[..., Awaitable[DiscordAdapter]],
) -> None:
    assert isinstance((await launch(shards=2)).client, discord.AutoShardedClient)
    assert not isinstance((await launch()).client, discord.AutoShardedClient)


async def test_sends_outside_start_and_stop_are_transient_errors_the_sender_retries() -> None:
    settings = DiscordSettings(token=SecretStr("test-token"), guild_ids=[GUILD])
    adapter = DiscordAdapter(settings, courses_root=SAMPLE_COURSES, gateway=False)
    with pytest.raises(TransientError, match="not started"):
        await adapter.send("dm:42", TextPart("Hello"))
    with pytest.raises(TransientError, match="not started"):
        await adapter.edit("dm:42", "7", TextPart("Hello"))
