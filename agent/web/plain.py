"""A command's rejection or failure in words a teacher can act on (简体中文 first, English beside).

A refusal or failure carries a `code` and its `params` (``arg_range`` ``{"arg": "level", "min": 0,
"max": 100}``; docs/codes.md): `plain_error` words the code in the teacher's language with what to
do, and the page keeps the technician's English (``/dev/ttyUSB7: cannot open: [Errno 2] …``)
behind its 技术信息 toggle.  A reply without a code (an error not yet coded) or with a code this
page has no words for falls back to the rules below: the first whose pattern is in the English
text names the words.  Device errors name the device (大屏, 摄像机) and the cable to check: 连线 for
a serial line, 网线 for a network device.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.web.text import DEFAULT_LANG

ZH: dict[str, str] = {
    "err_panel_offline_serial": "大屏没有响应，请检查电源和连线",
    "err_panel_offline_network": "大屏没有响应，请检查电源和网线",
    "err_projector_offline_serial": "投影机没有响应，请检查电源和连线",
    "err_projector_offline_network": "投影机没有响应，请检查电源和网线",
    "err_camera_offline_serial": "摄像机没有响应，请检查电源和连线",
    "err_camera_offline_network": "摄像机没有响应，请检查电源和网线",
    "err_device_offline_serial": "设备没有响应，请检查电源和连线",
    "err_device_offline_network": "设备没有响应，请检查电源和网线",
    "err_serial_open": "连接{what}的串口打不开，请检查串口线是否插好，或联系管理员",
    "err_garbled": "{what}的回答无法识别，请联系管理员检查连线和设备型号设置",
    "err_device_rejected": "{what}拒绝了这个操作（可能正在开机、待机或不支持）",
    "err_no_preset": "摄像机里没有这个预置位，请先保存一个位置",
    "err_auth": "{what}不接受登录密码，请联系管理员",
    "err_not_supported": "这台设备不支持这个操作",
    "err_no_recording": "本教室没有配置录制",
    "err_no_director": "本教室没有配置导播",
    "err_no_lesson_service": "互动课堂服务没有运行，请联系管理员",
    "err_no_sound": "本教室不发送声音，不需要静音",
    "err_not_configured": "本教室没有配置这个功能",
    "err_disk": "磁盘空间不够，不能开始录制，请联系管理员",
    "err_disk_numbers": "磁盘空间不够：剩余 {free_gb} GB，需要 {needed_gb} GB，不能开始录制，请联系管理员",
    "err_agent_busy": "教室电脑正忙，请稍后再试",
    "err_device_not_now": "{what}正在预热或散热，请稍后再试",
    "err_device_no_such": "{what}没有这个信号源或设置",
    "err_device_fault": "{what}报告故障，请联系管理员",
    "err_device_argument": "{what}不接受这个值",
    "err_device_profile": "{what}的型号设置有误，请联系管理员",
    "err_device_failed": "{what}出错了，请再试一次，或联系管理员",
    "err_already_recording": "已经在录制了",
    "err_already_lesson": "已经在上课了，请先结束上课",
    "err_busy": "现在正忙（正在上课或录制），请稍后再试",
    "err_already": "已经在进行中",
    "err_not_recording": "现在没有在录制",
    "err_no_lesson": "现在没有在上课",
    "err_not_running": "现在没有在进行",
    "err_timeout": "等待太久没有结果，请再试一次",
    "err_no_remotes": "请至少选择一个要连线的教室",
    "err_dual_one": "双师课堂只能连线一个教室",
    "err_self": "不能连线本教室自己",
    "err_refused": "对方教室拒绝了连线",
    "err_unreachable": "连不上其他教室，请检查网络，或联系管理员",
    "err_unknown_device": "本教室没有这台设备",
    "err_out_of_range": "{arg}只能在 {min} 到 {max} 之间",
    "err_missing": "缺少{arg}",
    "err_bad_value": "{arg}的值不正确",
    "err_bad_input": "请求不正确",
    "err_unknown_command": "本教室不支持这个功能",
    "err_other": "操作没有成功",
    "what_display": "大屏",
    "what_projector": "投影机",
    "what_camera": "摄像机",
    "what_device": "设备",
    "arg_level": "音量",
    "arg_volume": "音量",
    "arg_n": "预置位号",
    "arg_preset": "预置位号",
    "arg_speed": "转动速度",
    "arg_device": "设备",
    "arg_source": "信号源",
    "arg_sources": "画面",
    "arg_remotes": "要连线的教室",
    "arg_mode": "课堂类型",
    "arg_main": "主讲教室",
    "arg_on": "开关",
    "arg_direction": "方向",
    "arg_lesson": "课名",
    "arg_teacher": "老师",
    "arg_layout": "画面布局",
    "arg_other": "参数",
}

EN: dict[str, str] = {
    "err_panel_offline_serial": "The panel does not answer: check its power and cable",
    "err_panel_offline_network": "The panel does not answer: check its power and network cable",
    "err_projector_offline_serial": "The projector does not answer: check its power and cable",
    "err_projector_offline_network": "The projector does not answer: check its power and network cable",
    "err_camera_offline_serial": "The camera does not answer: check its power and cable",
    "err_camera_offline_network": "The camera does not answer: check its power and network cable",
    "err_device_offline_serial": "The device does not answer: check its power and cable",
    "err_device_offline_network": "The device does not answer: check its power and network cable",
    "err_serial_open": "The serial port of the {what} cannot be opened: check that its cable is plugged in",
    "err_garbled": "The {what} answers in a way this PC cannot read: call the technician",
    "err_device_rejected": "The {what} refused that (it may be starting up, in standby, or unable to)",
    "err_no_preset": "The camera has no such preset: save a position into it first",
    "err_auth": "The {what} does not accept its password: call the technician",
    "err_not_supported": "This device cannot do that",
    "err_no_recording": "Recording is not set up in this room",
    "err_no_director": "Directing is not set up in this room",
    "err_no_lesson_service": "The live lesson service is not running: call the technician",
    "err_no_sound": "This room sends no sound: there is nothing to mute",
    "err_not_configured": "This room is not set up for that",
    "err_disk": "Not enough disk space to record; call the technician",
    "err_disk_numbers": "Not enough disk space: {free_gb} GB free, {needed_gb} GB needed; call the technician",
    "err_agent_busy": "This PC is busy; try again shortly",
    "err_device_not_now": "The {what} is warming up or cooling down; try again shortly",
    "err_device_no_such": "The {what} has no such input or setting",
    "err_device_fault": "The {what} reports a fault: call the technician",
    "err_device_argument": "The {what} does not take this value",
    "err_device_profile": "The {what}'s model setting is wrong: call the technician",
    "err_device_failed": "The {what} failed; try again or call the technician",
    "err_already_recording": "Already recording",
    "err_already_lesson": "A lesson is on: end it first",
    "err_busy": "Busy (a lesson or a recording is on); try again later",
    "err_already": "Already running",
    "err_not_recording": "Not recording",
    "err_no_lesson": "No lesson is on",
    "err_not_running": "Nothing is running",
    "err_timeout": "No result in time; please try again",
    "err_no_remotes": "Choose at least one classroom to link",
    "err_dual_one": "A dual-teacher lesson links exactly one classroom",
    "err_self": "This room cannot link to itself",
    "err_refused": "The other classroom refused",
    "err_unreachable": "Cannot reach the other classrooms: check the network or call the technician",
    "err_unknown_device": "This room has no such device",
    "err_out_of_range": "The {arg} must be between {min} and {max}",
    "err_missing": "The {arg} is missing",
    "err_bad_value": "The {arg} is not right",
    "err_bad_input": "The request was not right",
    "err_unknown_command": "This room does not offer that",
    "err_other": "That did not work",
    "what_display": "panel",
    "what_projector": "projector",
    "what_camera": "camera",
    "what_device": "device",
    "arg_level": "volume",
    "arg_volume": "volume",
    "arg_n": "preset number",
    "arg_preset": "preset number",
    "arg_speed": "speed",
    "arg_device": "device",
    "arg_source": "input",
    "arg_sources": "pictures",
    "arg_remotes": "classrooms to link",
    "arg_mode": "kind of lesson",
    "arg_main": "main classroom",
    "arg_on": "switch",
    "arg_direction": "direction",
    "arg_lesson": "lesson name",
    "arg_teacher": "teacher",
    "arg_layout": "layout",
    "arg_other": "setting",
}

WORDS = {"zh": ZH, "en": EN}
OFFLINE_NOUN: Mapping[str, str] = {"display": "panel", "projector": "projector", "camera": "camera"}
# The command table's words (``level: 140 is out of range 0..100``) and a driver's (``level=140: out of range 0..100``).
_RANGE = r"(?P<arg>\w+)(: -?\d+ is|=-?\d+:) out of range (?P<min>-?\d+)\.\.(?P<max>-?\d+)"

# Ordered, most particular first: the first pattern found in the error names the words.
# "offline" and "cannot_open" are worded by the device's kind and wiring (see `plain_error`).
RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I), key)
    for pattern, key in (
        # The page's own mistake (nothing a teacher can put right): said plainly, detail behind the toggle.
        (r"unknown argument|missing argument|expected an object|^body\b|no frame takes", "err_bad_input"),
        (_RANGE, "err_out_of_range"),
        (r"^remotes: missing", "err_no_remotes"),
        (r"^(?P<arg>\w+): missing", "err_missing"),
        (r"^device: got ", "err_unknown_device"),
        (r"dual_teacher takes exactly one", "err_dual_one"),
        (r"^(remotes|main): .* is this room", "err_self"),
        (r"^(?P<arg>\w+): got .*expected|\b(?P<field>\w+)=\S+: expected", "err_bad_value"),
        (r"unknown command", "err_unknown_command"),
        (r"\) cannot \w+|serves no video of its own|offers no (ptz|absolute)", "err_not_supported"),
        (r"has no preset", "err_no_preset"),
        (r"authentication|password|\bERRA\b|http 401", "err_auth"),
        (r"cannot open:", "cannot_open"),
        (
            r"no reply within|cannot connect|port gone|not open|not started|no final reply|could not send|"
            r"cannot send|no pjlink greeting|no answer within|write failed",
            "offline",
        ),
        (r"unreadable", "err_garbled"),
        (r"device answered|camera answered|http \d{3}", "err_device_rejected"),
        (r"recording is not configured", "err_no_recording"),
        (r"directing is not configured|needs a \[director\]", "err_no_director"),
        (r"lesson service is not running", "err_no_lesson_service"),
        (r"sends no sound", "err_no_sound"),
        (r"not configured|not running on this agent", "err_not_configured"),
        (r"disk space", "err_disk"),
        (r"already recording", "err_already_recording"),
        (r"already in lesson|^leading lesson", "err_already_lesson"),
        (r" refused: ", "err_refused"),
        (r"busy|is not free|refused during", "err_busy"),
        (r"already", "err_already"),
        (r"^not recording", "err_not_recording"),
        (r"no lesson is running", "err_no_lesson"),
        (r"nothing to stop|not running", "err_not_running"),
        (r"no result within", "err_timeout"),
        (r"cannot reach|sent no offer|cannot ask the other classrooms", "err_unreachable"),
        (r"expected|out of range|not valid json", "err_bad_input"),
    )
)

# Each code (docs/codes.md) the agent's commands send, and the words it names; "offline" and
# "cannot_open" are worded by the device's kind and wiring, as the rules' are.
CODE_WORDS: Mapping[str, str] = {
    "arg_range": "err_out_of_range",
    "arg_int": "err_bad_value",
    "arg_bool": "err_bad_value",
    "arg_text": "err_bad_value",
    "arg_choice": "err_bad_value",
    "arg_list": "err_bad_value",
    "arg_name": "err_bad_value",
    "arg_missing": "err_missing",
    "arg_unknown": "err_bad_input",
    "args_object": "err_bad_input",
    "unknown_command": "err_unknown_command",
    "command_timeout": "err_timeout",
    "agent_busy": "err_agent_busy",
    "result_too_large": "err_other",
    "device_starting": "offline",  # a device never opened: its power or cable, as one that stopped answering
    "device_no_reply": "offline",
    "device_unreachable": "cannot_open",
    "device_unsupported": "err_not_supported",
    "device_auth_failed": "err_auth",
    "device_garbled": "err_garbled",
    "device_refused": "err_device_rejected",
    "device_argument": "err_device_argument",
    "device_profile": "err_device_profile",
    "device_failed": "err_device_failed",
    "disk_low": "err_disk_numbers",
    "recording_already": "err_already_recording",
    "recording_none": "err_not_recording",
    "recording_not_configured": "err_no_recording",
    "director_none": "err_no_director",
    "lesson_already": "err_already_lesson",
    "lesson_none": "err_no_lesson",
    "busy": "err_busy",
    "service_unknown": "err_not_configured",
}
# The words of a code that say more for one argument (arg_missing of remotes) or one device reason.
BY_ARG: Mapping[tuple[str, str], str] = {
    ("arg_missing", "remotes"): "err_no_remotes",
    ("arg_choice", "device"): "err_unknown_device",
}
BY_REASON: Mapping[str, str] = {
    "unavailable_time": "err_device_not_now",  # PJLink ERR3: warming up, cooling down, in standby
    "out_of_parameter": "err_device_no_such",  # PJLink ERR2: no such input
    "projector_failure": "err_device_fault",  # PJLink ERR4
}


def words(lang: str) -> dict[str, str]:
    """The error words of a language (Chinese for anything unknown)."""
    return WORDS.get(lang, WORDS[DEFAULT_LANG])


def plain_error(
    error: str, kind: str, lang: str, link: str = "", code: str = "", params: Mapping[str, Any] | None = None
) -> str:
    """The error in words a teacher can act on: by its `code` and `params`, else by its English `error`.

    `kind` is the device's (``display``, ``projector``, ``camera``) or "" when the command names
    none; `link` is how it is wired (``serial`` or ``network``, `agent.web.view.device_link`).
    """
    t = words(lang)
    if code in CODE_WORDS:
        return _coded(t, code, dict(params or {}), kind, link)
    for pattern, key in RULES:
        found = pattern.search(error)
        if found is None:
            continue
        params = {"what": t.get(f"what_{kind}", t["what_device"])}
        for name, value in found.groupdict().items():
            if value is not None:
                params[name] = value
        arg = found.groupdict().get("arg") or found.groupdict().get("field")
        if arg:
            params["arg"] = t.get(f"arg_{arg}", t["arg_other"])
        return _fill(t[_wired(key, kind, link)], params)
    return t["err_other"]


def _coded(t: Mapping[str, str], code: str, params: dict[str, Any], kind: str, link: str) -> str:
    """The words of a known code, filled from its params (an argument by its teacher's name)."""
    arg = str(params.get("arg", ""))
    key = BY_ARG.get((code, arg)) or CODE_WORDS[code]
    if code == "device_refused":
        key = BY_REASON.get(str(params.get("reason", "")), key)
    if code == "disk_low" and not all(isinstance(params.get(n), int | float) for n in ("free_gb", "needed_gb")):
        key = "err_disk"
    if key == "err_out_of_range" and not all(isinstance(params.get(n), int) for n in ("min", "max")):
        key = "err_bad_value"
    filled = {name: str(value) for name, value in params.items() if isinstance(value, int | float | str)}
    filled |= {"what": t.get(f"what_{kind}", t["what_device"]), "arg": t.get(f"arg_{arg}", t["arg_other"])}
    return _fill(t[_wired(key, kind, link)], filled)


def _wired(key: str, kind: str, link: str) -> str:
    """An offline device's words by its kind and wiring; a port that cannot be opened is a serial line's."""
    if key == "cannot_open":
        key = "err_serial_open" if link != "network" else "offline"
    if key == "offline":
        key = f"err_{OFFLINE_NOUN.get(kind, 'device')}_offline_{'network' if link == 'network' else 'serial'}"
    return key


def _fill(text: str, params: Mapping[str, str]) -> str:
    for name, value in params.items():
        text = text.replace("{" + name + "}", value)
    return text
