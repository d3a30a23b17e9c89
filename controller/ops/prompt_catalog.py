"""Which audio file to play: prompt id + language -> path under the sound root.

The tenant's language chooses, the extension's overrides it; a language we
have no file for falls back to English with a warning (once per language and
prompt), so a misconfigured tenant still hears something it can act on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("tollgate.prompts")

PROMPT_IDS = ("enter_pin", "invalid_pin", "pin_accepted", "not_authorized", "locked",
              "service_unavailable", "goodbye")
LANGUAGES = ("en", "fr", "de")
FALLBACK = "en"

PACKAGED_ROOT = Path(__file__).resolve().parents[2] / "prompts"


class Catalog:
    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else PACKAGED_ROOT
        self._warned: set[tuple[str, str]] = set()
        self._paths: dict[tuple[str, str], str] = {}

    def path(self, prompt: str, language: str) -> str:
        """Memoized: the answer for a (prompt, language) pair is looked up on disk once."""
        key = (prompt, language or "")
        found = self._paths.get(key)
        if found is None:
            found = self._paths[key] = self._lookup(prompt, language)
        return found

    def _lookup(self, prompt: str, language: str) -> str:
        if prompt not in PROMPT_IDS:
            raise KeyError(f"unknown prompt {prompt!r}")
        lang = (language or FALLBACK).lower()
        candidate = self.root / lang / f"{prompt}.wav"
        # The sound root is a path on the FreeSWITCH host; when it is not on
        # this host too, trust it for the languages we ship.
        local = self.root.is_dir()
        if lang not in LANGUAGES or (local and not candidate.is_file()):
            if (lang, prompt) not in self._warned:
                self._warned.add((lang, prompt))
                log.warning("no %s prompt %r under %s: using %s", lang, prompt, self.root, FALLBACK)
            candidate = self.root / FALLBACK / f"{prompt}.wav"
        return str(candidate)

    def files(self) -> dict[str, Path]:
        """Every prompt file of every language: 'fr/enter_pin.wav' -> its path under the root."""
        return {f"{lang}/{p}.wav": self.root / lang / f"{p}.wav" for lang in LANGUAGES for p in PROMPT_IDS}

    def missing(self) -> list[str]:
        return [name for name, path in self.files().items() if not path.is_file()]
