"""Key codes for ``send-key``: virsh's codesets, Linux key names, and the
translation to QEMU's ``qnum`` (the scan codes QMP ``send-key`` takes as
``{"type": "number"}``: PC set 1, with ``0x80 | code`` for ``0xe0``-prefixed keys).

Supported codesets: ``linux`` (default; names ``KEY_*`` or numbers), ``xt``,
``atset1``, ``xt_kbd``, ``qnum``, ``rfb`` (all set-1 flavoured: numbers pass
through), ``usb`` (HID usage ids) and ``win32`` (virtual-key codes, names
``VK_*``), for the keys of a PC 105-key keyboard.  Pure data, no imports.
"""
from __future__ import annotations

MAX_KEYS = 16  # libvirt's VIR_DOMAIN_SEND_KEY_MAX_KEYS
CODESETS = ("linux", "xt", "atset1", "xt_kbd", "usb", "win32", "rfb", "qnum")
_SET1_LIKE = ("xt", "atset1", "xt_kbd", "qnum", "rfb")

# linux keycode -> (name without KEY_, qnum, usb HID usage, win32 virtual key)
_LETTERS = "QWERTYUIOP ASDFGHJKL ZXCVBNM"
_TABLE: dict[int, tuple[str, int, int | None, int | None]] = {}


def _add(code: int, name: str, qnum: int, usb: int | None = None, vk: int | None = None) -> None:
    _TABLE[code] = (name, qnum, usb, vk)


def _build() -> None:
    _add(1, "ESC", 0x01, 41, 0x1B)
    for i, d in enumerate("1234567890"):
        _add(2 + i, d, 2 + i, 30 + i, ord(d))
    for code, name, usb, vk in ((12, "MINUS", 45, 0xBD), (13, "EQUAL", 46, 0xBB), (14, "BACKSPACE", 42, 0x08),
                                (15, "TAB", 43, 0x09), (26, "LEFTBRACE", 47, 0xDB), (27, "RIGHTBRACE", 48, 0xDD),
                                (28, "ENTER", 40, 0x0D), (29, "LEFTCTRL", 224, 0xA2), (39, "SEMICOLON", 51, 0xBA),
                                (40, "APOSTROPHE", 52, 0xDE), (41, "GRAVE", 53, 0xC0), (42, "LEFTSHIFT", 225, 0xA0),
                                (43, "BACKSLASH", 49, 0xDC), (51, "COMMA", 54, 0xBC), (52, "DOT", 55, 0xBE),
                                (53, "SLASH", 56, 0xBF), (54, "RIGHTSHIFT", 229, 0xA1), (55, "KPASTERISK", 85, 0x6A),
                                (56, "LEFTALT", 226, 0xA4), (57, "SPACE", 44, 0x20), (58, "CAPSLOCK", 57, 0x14),
                                (69, "NUMLOCK", 83, 0x90), (70, "SCROLLLOCK", 71, 0x91), (74, "KPMINUS", 86, 0x6D),
                                (78, "KPPLUS", 87, 0x6B), (83, "KPDOT", 99, 0x6E), (86, "102ND", 100, 0xE2)):
        _add(code, name, code, usb, vk)
    row_start = {0: 16, 1: 30, 2: 44}
    for r, row in enumerate(_LETTERS.split()):
        for i, ch in enumerate(row):
            code = row_start[r] + i
            _add(code, ch, code, 4 + ord(ch) - ord("A"), ord(ch))
    for i in range(10):  # F1..F10
        _add(59 + i, f"F{i + 1}", 59 + i, 58 + i, 0x70 + i)
    _add(87, "F11", 0x57, 68, 0x7A)
    _add(88, "F12", 0x58, 69, 0x7B)
    for code, n, usb in ((71, "KP7", 95), (72, "KP8", 96), (73, "KP9", 97), (75, "KP4", 92), (76, "KP5", 93),
                         (77, "KP6", 94), (79, "KP1", 89), (80, "KP2", 90), (81, "KP3", 91), (82, "KP0", 98)):
        _add(code, n, code, usb, 0x60 + int(n[2]))
    for code, name, e0, usb, vk in ((96, "KPENTER", 0x1C, 88, None), (97, "RIGHTCTRL", 0x1D, 228, 0xA3),
                                    (98, "KPSLASH", 0x35, 84, 0x6F), (99, "SYSRQ", 0x37, 70, 0x2C),
                                    (100, "RIGHTALT", 0x38, 230, 0xA5), (102, "HOME", 0x47, 74, 0x24),
                                    (103, "UP", 0x48, 82, 0x26), (104, "PAGEUP", 0x49, 75, 0x21),
                                    (105, "LEFT", 0x4B, 80, 0x25), (106, "RIGHT", 0x4D, 79, 0x27),
                                    (107, "END", 0x4F, 77, 0x23), (108, "DOWN", 0x50, 81, 0x28),
                                    (109, "PAGEDOWN", 0x51, 78, 0x22), (110, "INSERT", 0x52, 73, 0x2D),
                                    (111, "DELETE", 0x53, 76, 0x2E), (116, "POWER", 0x5E, 102, None),
                                    (125, "LEFTMETA", 0x5B, 227, 0x5B), (126, "RIGHTMETA", 0x5C, 231, 0x5C),
                                    (127, "COMPOSE", 0x5D, 101, 0x5D)):
        _add(code, name, 0x80 | e0, usb, vk)
    _add(119, "PAUSE", 0xC6, 72, 0x13)


_build()
_LINUX_BY_NAME = {f"KEY_{v[0]}": k for k, v in _TABLE.items()}
_WIN32_NAMES = {"VK_RETURN": 0x0D, "VK_ESCAPE": 0x1B, "VK_BACK": 0x08, "VK_TAB": 0x09, "VK_SPACE": 0x20,
                "VK_LSHIFT": 0xA0, "VK_RSHIFT": 0xA1, "VK_LCONTROL": 0xA2, "VK_RCONTROL": 0xA3,
                "VK_LMENU": 0xA4, "VK_RMENU": 0xA5, "VK_DELETE": 0x2E, "VK_INSERT": 0x2D, "VK_HOME": 0x24,
                "VK_END": 0x23, "VK_PRIOR": 0x21, "VK_NEXT": 0x22, "VK_LEFT": 0x25, "VK_UP": 0x26,
                "VK_RIGHT": 0x27, "VK_DOWN": 0x28, "VK_LWIN": 0x5B, "VK_RWIN": 0x5C, "VK_CAPITAL": 0x14,
                **{f"VK_F{i + 1}": 0x70 + i for i in range(12)},
                **{f"VK_{c}": ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"}}
_BY_USB = {v[2]: k for k, v in _TABLE.items() if v[2] is not None}
_BY_VK = {}
for _k, _v in sorted(_TABLE.items()):
    if _v[3] is not None:
        _BY_VK.setdefault(_v[3], _k)


class KeycodeError(ValueError):
    pass


def parse(codeset: str, text: str) -> int:
    """One keycode as virsh reads it: a name of the codeset, or a number (0x.. too)."""
    if codeset not in CODESETS:
        raise KeycodeError(f"unknown codeset: '{codeset}'")
    if codeset == "linux" and text in _LINUX_BY_NAME:
        return _LINUX_BY_NAME[text]
    if codeset == "win32" and text in _WIN32_NAMES:
        return _WIN32_NAMES[text]
    try:
        value = int(text, 0)
    except ValueError:
        raise KeycodeError(f"invalid keycode: '{text}'") from None
    if value < 0 or value > 0xFFFF:
        raise KeycodeError(f"invalid keycode: '{text}'")
    return value


def to_qnum(codeset: str, code: int) -> int:
    """The QEMU qnum of ``code`` in ``codeset`` (KeycodeError if it has none)."""
    if codeset in _SET1_LIKE:
        if 0 < code <= 0xFF:
            return code
    else:
        linux = {"linux": code if code in _TABLE else None, "usb": _BY_USB.get(code),
                 "win32": _BY_VK.get(code)}.get(codeset)
        if linux is not None:
            return _TABLE[linux][1]
    raise KeycodeError(f"cannot translate keycode {code} of codeset {codeset} to a scan code")


def check(codeset: str, keycodes, holdtime: int) -> None:
    """Raise InvalidArg for a bad send-key request (same checks for every driver)."""
    from virtctl.errors import InvalidArg

    if codeset not in CODESETS:
        raise InvalidArg(f"invalid argument: unknown codeset '{codeset}'")
    if not keycodes:
        raise InvalidArg("invalid argument: no keycodes given")
    if len(keycodes) > MAX_KEYS:
        raise InvalidArg(f"invalid argument: too many keycodes: {len(keycodes)} (at most {MAX_KEYS})")
    if not isinstance(holdtime, int) or isinstance(holdtime, bool) or holdtime < 0:
        raise InvalidArg(f"invalid argument: invalid holdtime {holdtime!r}")
    for k in keycodes:
        if not isinstance(k, int) or isinstance(k, bool):
            raise InvalidArg(f"invalid argument: invalid keycode {k!r}")
        try:
            to_qnum(codeset, k)
        except KeycodeError as exc:
            raise InvalidArg(f"invalid argument: {exc}") from None
    if len(set(keycodes)) != len(keycodes):
        raise InvalidArg("invalid argument: duplicate keycode in the key sequence")
