"""What both web apps (the classroom page and the centre's dashboard) do alike with cookies.

Signed session cookies, the safe place to go back to after a login or a language switch, and
the language cookie.  It imports none of our packages, so the agent and the centre may both use it.
"""

from websession.body import BodyError, read_json_object
from websession.lang import LANG_COOKIE, LANG_SECONDS, add_lang_route, chosen_lang, lang_switch_href
from websession.session import Sessions, safe_next, set_session_cookie
from websession.throttle import Throttle

__all__ = [
    "BodyError",
    "LANG_COOKIE",
    "LANG_SECONDS",
    "Sessions",
    "Throttle",
    "add_lang_route",
    "chosen_lang",
    "lang_switch_href",
    "read_json_object",
    "safe_next",
    "set_session_cookie",
]
