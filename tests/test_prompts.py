"""The announcements: every prompt in every language, 8 kHz mono 16-bit, 0.3-8 s."""

import wave

import pytest

from controller.ops.prompt_catalog import LANGUAGES, PACKAGED_ROOT, PROMPT_IDS, Catalog


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("prompt", PROMPT_IDS)
def test_prompt_file(prompt, lang):
    path = PACKAGED_ROOT / lang / f"{prompt}.wav"
    assert path.is_file(), f"missing {path}"
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        seconds = w.getnframes() / w.getframerate()
    assert 0.3 <= seconds <= 8.0, seconds


def test_catalog_language_choice_and_fallback(tmp_path, caplog):
    assert Catalog().path("enter_pin", "de").endswith("/de/enter_pin.wav")
    assert Catalog().path("enter_pin", "").endswith("/en/enter_pin.wav")
    assert Catalog().path("locked", "it").endswith("/en/locked.wav")
    assert "no it prompt" in caplog.text
    # A root with only English: French falls back, with a warning.
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "goodbye.wav").write_bytes(b"RIFF")
    assert Catalog(tmp_path).path("goodbye", "fr") == str(tmp_path / "en" / "goodbye.wav")
    with pytest.raises(KeyError):
        Catalog().path("no_such_prompt", "en")
