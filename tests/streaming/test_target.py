"""Push URLs: what is accepted, and the stream key shown nowhere (the redacted URL, scrubbed messages, errors)."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streaming.target import PushTarget, SrtParams, TargetError, parse_target

KEY = "live_8472_s3cr3t?auth=token%2B1"


@pytest.mark.parametrize(
    ("url", "shown", "fmt"),
    [
        ("rtmp://live.example.edu.cn/live/abcd-1234", "rtmp://live.example.edu.cn/live/***", "flv"),
        ("rtmp://10.0.0.5:1935/app/sub/abcd-1234", "rtmp://10.0.0.5:1935/app/sub/***", "flv"),
        ("rtmps://a.rtmp.youtube.com:443/live2/xxxx-yyyy", "rtmps://a.rtmp.youtube.com:443/live2/***", "flv"),
        ("rtmp://h/live/key1?sign=abcdef&t=1", "rtmp://h/live/***", "flv"),  # a signed URL: the query too
        ("rtmp://user:pa55word@h/live/key1", "rtmp://user:***@h/live/***", "flv"),
        ("srt://ingest.example:9000?streamid=#!::r=live/k,m=publish&latency=200",
         "srt://ingest.example:9000?streamid=***&latency=200", "mpegts"),
        ("srt://[::1]:9000?passphrase=0123456789abc&streamid=abcd", "srt://[::1]:9000?passphrase=***&streamid=***",
         "mpegts"),
        ("srt://127.0.0.1:9000", "srt://127.0.0.1:9000", "mpegts"),
    ],
)  # fmt: skip
def test_accepted_urls_and_what_is_shown_of_them(url: str, shown: str, fmt: str) -> None:
    target = parse_target(url)
    assert (target.redacted, target.format) == (shown, fmt)
    assert target.url == url
    for secret in target.secrets:
        assert secret not in target.redacted and secret not in repr(target) and secret not in str(target)


def test_any_message_quoting_the_url_is_scrubbed_in_either_spelling() -> None:
    target = parse_target("srt://h:9000?streamid=%23%21%3A%3Ar%3Dlive%2Fmy-key&passphrase=p4ss-phrase-long")
    decoded = "#!::r=live/my-key"
    message = f"Connection to srt://h:9000?streamid=%23%21%3A%3Ar%3Dlive%2Fmy-key failed ({decoded}, p4ss-phrase-long)"
    scrubbed = target.scrub(message)
    assert "my-key" not in scrubbed and "p4ss" not in scrubbed and scrubbed.count("***") == 3


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://h/live/abcd-1234", "scheme 'http'"),
        ("rtmp:///live/abcd-1234", "expected a host"),
        ("rtmp://h/abcd-1234", "expected rtmp://HOST[:PORT]/APP/STREAM_KEY"),
        ("rtmp://h/live/abc", "shorter than 4"),
        ("rtmp://h:99999/live/abcd-1234", "not a URL"),
        ("srt://h?streamid=abcd-1234", "expected a port"),
        ("rtmp://h/live/abcd 1234", "without spaces"),
        ("rtmp://h/live/" + "k" * 3000, "at most 2048"),
        (42, "got int"),
    ],
)
def test_unusable_urls_are_refused_without_showing_the_key(url: object, words: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(url)
    assert words in str(caught.value)
    assert "abcd-1234" not in str(caught.value) and "kkkkkkk" not in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(alphabet=string.ascii_letters + string.digits + "-_.~!$&'()*+,;=:@%", min_size=4, max_size=40),
    scheme=st.sampled_from(["rtmp", "rtmps", "srt"]),
)
def test_a_key_never_shows_in_what_parsing_says(key: str, scheme: str) -> None:
    url = f"{scheme}://host:1935/app/{key}" if scheme != "srt" else f"srt://host:9000?streamid={key}"
    assume(key not in url[: -len(key)])  # a key that is also a word of the URL ("rtmp") proves nothing
    assume(scheme != "srt" or "&" not in key)  # in a query "&" starts the next parameter: no longer the streamid
    try:
        target: PushTarget | None = parse_target(url)
    except TargetError as exc:  # refused: its message still must not carry the key
        assert key not in str(exc)
        target = None
    if target is not None:
        assert key not in target.redacted
        assert key not in target.scrub(f"error on {url}: {key}")


def test_an_srt_url_gives_the_callers_settings_decoded_as_ffmpeg_reads_them() -> None:
    target = parse_target(
        "srt://Ingest.example:9000?streamid=%23%21%3A%3Ar%3Dlive%2Fk%2B1,m=publish&passphrase=p4ss+phrase-long"
        "&pbkeylen=32&latency=250000&mode=caller&transtype=live"
    )
    assert target.srt() == SrtParams("ingest.example", 9000, "#!::r=live/k+1,m=publish", "p4ss+phrase-long", 32, 250)
    assert "p4ss" not in repr(target.srt()) and "live/k" not in repr(target.srt())
    assert parse_target("srt://[::1]:9000").srt() == SrtParams("::1", 9000, "", "", 0, None)  # libsrt's defaults
    with pytest.raises(TargetError, match="not an srt:// URL"):
        parse_target("rtmp://h/live/abcd-1234").srt()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("streamid=abcd-1234&maxbw=100", "'maxbw' is not supported"),
        ("streamid=abcd-1234&abcd-12345678=1", "(not shown) is not supported"),  # a pasted key is not echoed
        ("streamid=abcd-1234&streamid=abcd-5678", "given twice"),
        ("passphrase=abcd-1234", "passphrase: expected 10 to 79 bytes"),
        ("passphrase=abcd-1234" + "x" * 80, "passphrase: expected 10 to 79 bytes"),
        ("streamid=abcd-1234" + "x" * 600, "streamid: expected at most 512 bytes"),
        ("streamid=abcd-1234&pbkeylen=20", "pbkeylen: got 20, expected 16, 24 or 32"),
        ("streamid=abcd-1234&latency=-5", "latency: got '-5', expected a whole number"),
        ("streamid=abcd-1234&latency=99999999999", "expected a whole number"),
        ("streamid=abcd-1234&latency=90000000", "expected microseconds up to 60000000"),
        ("streamid=abcd-1234&mode=listener", "mode: expected caller"),
        ("streamid=abcd-1234&transtype=file", "transtype: expected live"),
    ],
)
def test_an_srt_parameter_the_push_cannot_honour_is_refused_at_load(query: str, words: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_target(f"srt://h:9000?{query}")
    assert words in str(caught.value)
    assert not {"abcd-1234", "abcd-5678", "abcd-12345678"} & set(str(caught.value).replace("=", " ").split())
    assert "abcd-1234" not in str(caught.value) and "abcd-5678" not in str(caught.value)
