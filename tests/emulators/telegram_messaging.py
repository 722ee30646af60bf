"""Bot API methods that send, edit and delete messages, polls and media, validated as Telegram does."""

from __future__ import annotations

import re
from typing import Any

from tests.emulators.telegram_api_errors import bad_request
from tests.emulators.telegram_backend import Backend, Handler
from tests.emulators.telegram_files import StoredMedia, resolve_media
from tests.emulators.telegram_params import Params
from tests.emulators.telegram_world import BotAccount, Chat, StoredPoll

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_QUESTION_LENGTH = 300
MAX_OPTION_LENGTH = 100
MIN_POLL_OPTIONS = 2
MAX_POLL_OPTIONS = 12
"""Bot API 9.1 raised the cap from 10 to 12 options."""
MAX_EXPLANATION_LENGTH = 200
MIN_ALBUM_ITEMS = 2
MAX_ALBUM_ITEMS = 10
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_URL = re.compile(r"^(https?|tg)://\S+$", re.IGNORECASE)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)


def checked_reply_markup(markup: Any) -> dict[str, Any] | None:
    """The reply markup Telegram accepts; inline keyboards are checked button by button."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if not any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays')
    if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
        raise bad_request("reply markup is too long")
    for row in rows:
        for button in row:
            _check_inline_button(button)
    return {"inline_keyboard": rows}


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text is not specified")
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button and not (isinstance(button["url"], str) and _BUTTON_URL.match(button["url"])):
        raise bad_request("BUTTON_URL_INVALID")


def _inline_only(markup: dict[str, Any] | None) -> dict[str, Any]:
    """A Message echoes only an inline keyboard back."""
    return {"reply_markup": markup} if markup and "inline_keyboard" in markup else {}


class MessagingMethods:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.world = backend.world

    def handlers(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "sendMessage": self.send_message,
            "sendMediaGroup": self.send_media_group,
            "sendPoll": self.send_poll,
            "stopPoll": self.stop_poll,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "answerCallbackQuery": self.answer_callback_query,
            "pinChatMessage": self.pin_chat_message,
            "sendChatAction": self.send_chat_action,
        }
        for kind in ("photo", "document", "audio", "voice", "video"):
            handlers[f"send{kind.capitalize()}"] = self._media_sender(kind)
        return handlers

    async def send_message(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self.world.target_chat(bot, params.chat_id())
        thread_id = self.backend.thread_id(chat, params, bot)
        text = params.text("text")
        if not text:
            raise bad_request("message text is empty")
        formatted = self.backend.formatted(
            text,
            params.text("parse_mode"),
            params.structured("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="message is too long",
        )
        if not formatted.text:
            raise bad_request("message text is empty")
        markup = checked_reply_markup(params.structured("reply_markup"))
        reply_to = self.backend.reply_to(bot, chat, params)
        paid = self.backend.admit(bot, chat, params)
        content: dict[str, Any] = {"text": formatted.text}
        if formatted.entities:
            content["entities"] = list(formatted.entities)
        content.update(_inline_only(markup))
        message = self.backend.bot_message(bot, chat, thread_id=thread_id, reply_to=reply_to, content=content)
        await self.backend.record_sent("sendMessage", bot, chat, message, params, paid=paid)
        return message

    def _caption(self, caption: str | None, parse_mode: str | None, entities: Any) -> dict[str, Any]:
        if not caption:
            return {}
        formatted = self.backend.formatted(
            caption, parse_mode, entities, limit=MAX_CAPTION_LENGTH, too_long="message caption is too long"
        )
        content: dict[str, Any] = {"caption": formatted.text} if formatted.text else {}
        if formatted.entities:
            content["caption_entities"] = list(formatted.entities)
        return content

    def _media_sender(self, kind: str) -> Handler:
        async def send_media(bot: BotAccount, params: Params) -> dict[str, Any]:
            chat = self.world.target_chat(bot, params.chat_id())
            thread_id = self.backend.thread_id(chat, params, bot)
            caption = self._caption(
                params.text("caption"),
                params.text("parse_mode"),
                params.structured("caption_entities"),
            )
            markup = checked_reply_markup(params.structured("reply_markup"))
            reply_to = self.backend.reply_to(bot, chat, params)
            media = await self._media(bot, kind, params.text(kind), params, field=kind)
            paid = self.backend.admit(bot, chat, params)
            content = {kind: media.to_json(), **caption, **_inline_only(markup)}
            message = self.backend.bot_message(
                bot, chat, thread_id=thread_id, reply_to=reply_to, content=content
            )
            await self.backend.record_sent(
                f"send{kind.capitalize()}",
                bot,
                chat,
                message,
                params,
                paid=paid,
                media_kind=kind,
                file_ids=media.file_ids,
            )
            return message

        return send_media

    async def _media(
        self, bot: BotAccount, kind: str, reference: str | None, params: Params, *, field: str
    ) -> StoredMedia:
        upload = params.upload(field)
        if upload is None and reference and reference.startswith("attach://"):
            upload = params.upload(reference.removeprefix("attach://"))
            if upload is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
        details: dict[str, Any] = {}
        if kind in ("audio", "voice", "video"):
            details["duration"] = params.integer("duration") or 0
        if kind == "video":
            details["width"], details["height"] = params.integer("width"), params.integer("height")
        if kind == "audio":
            details["extra"] = {
                name: value for name in ("performer", "title") if (value := params.text(name)) is not None
            }
        return await resolve_media(
            self.backend.files,
            bot.id,
            kind,
            reference,
            upload.content if upload else None,
            file_name=upload.filename if upload else None,
            mime_type=upload.content_type
            if upload and upload.content_type != "application/octet-stream"
            else None,
            fetch_url=self.backend.fetch_url,
            details=details,
        )

    async def send_media_group(self, bot: BotAccount, params: Params) -> list[dict[str, Any]]:
        """An album: one message per item, all sharing a media_group_id; one send against the flood limits."""
        chat = self.world.target_chat(bot, params.chat_id())
        thread_id = self.backend.thread_id(chat, params, bot)
        items = params.structured("media")
        if not isinstance(items, list) or not items:
            raise bad_request('parameter "media" is required')
        if len(items) < MIN_ALBUM_ITEMS or len(items) > MAX_ALBUM_ITEMS:
            raise bad_request("media group must include 2-10 items")
        kinds = [item.get("type") if isinstance(item, dict) else None for item in items]
        if any(kind not in ("photo", "video", "document", "audio") for kind in kinds):
            raise bad_request("can't parse InputMedia: media type is invalid")
        if ("document" in kinds or "audio" in kinds) and len(set(kinds)) > 1:
            raise bad_request("MEDIA_INVALID: documents and audio can be grouped only with the same type")
        reply_to = self.backend.reply_to(bot, chat, params)
        prepared = []
        for item, kind in zip(items, kinds, strict=True):
            caption = self._caption(item.get("caption"), item.get("parse_mode"), item.get("caption_entities"))
            media = await self._media(bot, str(kind), item.get("media"), params, field="")
            prepared.append((str(kind), media, caption))
        paid = self.backend.admit(bot, chat, params)
        group_id = self.world.next_media_group_id()
        messages = []
        for kind, media, caption in prepared:
            content = {"media_group_id": group_id, kind: media.to_json(), **caption}
            message = self.backend.bot_message(
                bot, chat, thread_id=thread_id, reply_to=reply_to, content=content
            )
            await self.backend.record_sent(
                "sendMediaGroup",
                bot,
                chat,
                message,
                params,
                paid=paid,
                media_kind=kind,
                file_ids=media.file_ids,
            )
            messages.append(message)
        return messages

    async def send_poll(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self.world.target_chat(bot, params.chat_id())
        thread_id = self.backend.thread_id(chat, params, bot)
        question = self._poll_question(params)
        options = self._poll_options(params.structured("options"))
        poll_type = params.text("type") or "regular"
        if poll_type not in ("regular", "quiz"):
            raise bad_request("poll type is invalid")
        correct = self._correct_options(params, poll_type, len(options))
        explanation = None
        explanation_entities: tuple[dict[str, Any], ...] = ()
        if params.text("explanation"):
            if poll_type != "quiz":
                raise bad_request("explanation can be specified only for quizzes")
            formatted = self.backend.formatted(
                params.text("explanation") or "",
                params.text("explanation_parse_mode"),
                params.structured("explanation_entities"),
                limit=MAX_EXPLANATION_LENGTH,
                too_long="explanation is too long",
                field="explanation",
            )
            explanation, explanation_entities = formatted.text, formatted.entities
        multiple = params.flag("allows_multiple_answers")
        if poll_type == "quiz" and multiple and len(correct) < 1:
            raise bad_request("quiz must have a correct option")
        markup = checked_reply_markup(params.structured("reply_markup"))
        reply_to = self.backend.reply_to(bot, chat, params)
        paid = self.backend.admit(bot, chat, params)
        message_id = self.world.dialog(bot.id, chat.id).allocate_message_id()
        poll = StoredPoll(
            id=self.world.next_poll_id(),
            bot_id=bot.id,
            chat_id=chat.id,
            message_id=message_id,
            question=question,
            options=options,
            type=poll_type,
            correct_option_ids=correct,
            explanation=explanation,
            explanation_entities=explanation_entities,
            is_anonymous=params.flag("is_anonymous", default=True),
            allows_multiple_answers=multiple,
            is_closed=params.flag("is_closed"),
        )
        self.world.polls[poll.id] = poll
        content = {"poll": poll.to_json(), **_inline_only(markup)}
        message = self.backend.bot_message(
            bot, chat, thread_id=thread_id, reply_to=reply_to, content=content, message_id=message_id
        )
        await self.backend.record_sent("sendPoll", bot, chat, message, params, paid=paid, media_kind="poll")
        return message

    def _poll_question(self, params: Params) -> str:
        question = (params.text("question") or "").strip()
        if not question:
            raise bad_request("poll question must be non-empty")
        if len(question) > MAX_QUESTION_LENGTH:
            raise bad_request(f"poll question length must not exceed {MAX_QUESTION_LENGTH}")
        return question

    def _poll_options(self, raw: Any) -> list[str]:
        if not isinstance(raw, list):
            raise bad_request("can't parse options JSON object")
        options = []
        for option in raw:
            text = option.get("text") if isinstance(option, dict) else option
            if not isinstance(text, str) or not text.strip():
                raise bad_request("poll options must be non-empty")
            if len(text) > MAX_OPTION_LENGTH:
                raise bad_request(f"poll options length must not exceed {MAX_OPTION_LENGTH}")
            options.append(text)
        if len(options) < MIN_POLL_OPTIONS:
            raise bad_request("poll must have at least 2 option")
        if len(options) > MAX_POLL_OPTIONS:
            raise bad_request(f"poll can't have more than {MAX_POLL_OPTIONS} options")
        return options

    def _correct_options(self, params: Params, poll_type: str, option_count: int) -> tuple[int, ...]:
        raw = params.structured("correct_option_ids")
        if raw is None and params.has("correct_option_id"):
            raw = [params.integer("correct_option_id")]
        if raw is None:
            if poll_type == "quiz":
                raise bad_request("wrong correct option ID specified")
            return ()
        if poll_type != "quiz":
            raise bad_request("correct option can be specified only for quizzes")
        if not isinstance(raw, list) or not raw:
            raise bad_request("wrong correct option ID specified")
        correct = []
        for value in raw:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < option_count:
                raise bad_request("wrong correct option ID specified")
            correct.append(value)
        if len(correct) > 1 and not params.flag("allows_multiple_answers"):
            raise bad_request("wrong correct option ID specified")
        return tuple(correct)

    async def stop_poll(self, bot: BotAccount, params: Params) -> dict[str, Any]:
        chat = self.world.target_chat(bot, params.chat_id())
        message_id = params.integer("message_id")
        message = self.world.dialog(bot.id, chat.id).messages.get(message_id or 0)
        poll = self.world.polls.get(message["poll"]["id"]) if message and "poll" in message else None
        if message is None or poll is None or message["from"].get("id") != bot.id:
            raise bad_request("message with poll to stop not found")
        if poll.is_closed:
            raise bad_request("poll has already been closed")
        poll.is_closed = True
        markup = checked_reply_markup(params.structured("reply_markup"))
        message["poll"] = poll.to_json()
        if markup is not None:
            message.update(_inline_only(markup))
        self.backend.queue(bot.id).push("poll", poll.to_json())
        result = poll.to_json()
        await self.backend.record_action(
            "stopPoll", bot, params, result, chat_id=chat.id, message_id=message_id
        )
        return result

    def _own_message(self, bot: BotAccount, params: Params, missing: str) -> tuple[Chat, dict[str, Any]]:
        chat = self.world.target_chat(bot, params.chat_id())
        message = self.world.dialog(bot.id, chat.id).messages.get(params.integer("message_id") or 0)
        if message is None:
            raise bad_request(missing)
        if message["from"].get("id") != bot.id:
            raise bad_request("message can't be edited")
        return chat, message

    async def edit_message_text(self, bot: BotAccount, params: Params) -> Any:
        if params.has("inline_message_id"):
            await self.backend.record_action("editMessageText", bot, params, True)
            return True
        chat, message = self._own_message(bot, params, "message to edit not found")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text = params.text("text")
        if not text:
            raise bad_request("message text is empty")
        formatted = self.backend.formatted(
            text,
            params.text("parse_mode"),
            params.structured("entities"),
            limit=MAX_TEXT_LENGTH,
            too_long="message is too long",
        )
        if not formatted.text:
            raise bad_request("message text is empty")
        markup = _inline_only(checked_reply_markup(params.structured("reply_markup")))
        entities = list(formatted.entities)
        if (
            message["text"] == formatted.text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED)
        message["text"] = formatted.text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        self._replace_markup(message, markup)
        return await self._edited("editMessageText", bot, chat, message, params)

    async def edit_message_caption(self, bot: BotAccount, params: Params) -> Any:
        if params.has("inline_message_id"):
            await self.backend.record_action("editMessageCaption", bot, params, True)
            return True
        chat, message = self._own_message(bot, params, "message to edit not found")
        if not any(kind in message for kind in ("photo", "document", "audio", "voice", "video")):
            raise bad_request("there is no caption in the message to edit")
        caption = self._caption(
            params.text("caption"), params.text("parse_mode"), params.structured("caption_entities")
        )
        markup = _inline_only(checked_reply_markup(params.structured("reply_markup")))
        if (
            message.get("caption") == caption.get("caption")
            and message.get("caption_entities") == caption.get("caption_entities")
            and message.get("reply_markup") == markup.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED)
        message.pop("caption", None)
        message.pop("caption_entities", None)
        message.update(caption)
        self._replace_markup(message, markup)
        return await self._edited("editMessageCaption", bot, chat, message, params)

    async def edit_message_reply_markup(self, bot: BotAccount, params: Params) -> Any:
        if params.has("inline_message_id"):
            await self.backend.record_action("editMessageReplyMarkup", bot, params, True)
            return True
        chat, message = self._own_message(bot, params, "message to edit not found")
        markup = _inline_only(checked_reply_markup(params.structured("reply_markup")))
        if message.get("reply_markup") == markup.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        self._replace_markup(message, markup)
        return await self._edited("editMessageReplyMarkup", bot, chat, message, params)

    @staticmethod
    def _replace_markup(message: dict[str, Any], markup: dict[str, Any]) -> None:
        message.pop("reply_markup", None)
        message.update(markup)

    async def _edited(
        self, method: str, bot: BotAccount, chat: Chat, message: dict[str, Any], params: Params
    ) -> dict[str, Any]:
        message["edit_date"] = self.backend.unix_now()
        result = dict(message)
        await self.backend.record_action(
            method, bot, params, result, chat_id=chat.id, message_id=message["message_id"]
        )
        return result

    async def delete_message(self, bot: BotAccount, params: Params) -> bool:
        chat = self.world.target_chat(bot, params.chat_id())
        message_id = params.integer("message_id")
        dialog = self.world.dialog(bot.id, chat.id)
        if message_id is None or dialog.messages.pop(message_id, None) is None:
            raise bad_request("message to delete not found")
        await self.backend.record_action(
            "deleteMessage", bot, params, True, chat_id=chat.id, message_id=message_id
        )
        return True

    async def answer_callback_query(self, bot: BotAccount, params: Params) -> bool:
        query_id = params.text("callback_query_id") or ""
        pending = self.world.callbacks.get(query_id)
        if pending is None or pending.bot_id != bot.id or pending.answer is not None:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        pending.answer = params.raw
        await self.backend.record_action("answerCallbackQuery", bot, params, True, chat_id=pending.user_id)
        return True

    async def pin_chat_message(self, bot: BotAccount, params: Params) -> bool:
        chat = self.world.target_chat(bot, params.chat_id())
        if not chat.is_private:
            rights = chat.bot_rights.get(bot.id)
            if rights is None or not rights.can_pin_messages:
                raise bad_request("not enough rights to manage pinned messages in the chat")
        message_id = params.integer("message_id")
        dialog = self.world.dialog(bot.id, chat.id)
        if message_id is None or message_id not in dialog.messages:
            raise bad_request("message to pin not found")
        dialog.pinned.append(message_id)
        await self.backend.record_action(
            "pinChatMessage", bot, params, True, chat_id=chat.id, message_id=message_id
        )
        return True

    async def send_chat_action(self, bot: BotAccount, params: Params) -> bool:
        chat = self.world.target_chat(bot, params.chat_id())
        self.backend.thread_id(chat, params, bot)
        if params.text("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        await self.backend.record_action("sendChatAction", bot, params, True, chat_id=chat.id)
        return True
