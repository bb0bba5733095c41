"""Language codes: ISO 639-1 codes and names, and the codes multilingual tokenizers use."""

from __future__ import annotations

from ..errors import UnsupportedLanguageError

#: ISO 639-1 code -> (English name, ISO 639-3 code used by NLLB).
LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("Arabic", "arb"),
    "bg": ("Bulgarian", "bul"),
    "cs": ("Czech", "ces"),
    "da": ("Danish", "dan"),
    "de": ("German", "deu"),
    "el": ("Greek", "ell"),
    "en": ("English", "eng"),
    "es": ("Spanish", "spa"),
    "et": ("Estonian", "est"),
    "fi": ("Finnish", "fin"),
    "fr": ("French", "fra"),
    "he": ("Hebrew", "heb"),
    "hi": ("Hindi", "hin"),
    "hu": ("Hungarian", "hun"),
    "id": ("Indonesian", "ind"),
    "it": ("Italian", "ita"),
    "ja": ("Japanese", "jpn"),
    "ko": ("Korean", "kor"),
    "lt": ("Lithuanian", "lit"),
    "lv": ("Latvian", "lvs"),
    "nl": ("Dutch", "nld"),
    "no": ("Norwegian", "nob"),
    "pl": ("Polish", "pol"),
    "pt": ("Portuguese", "por"),
    "ro": ("Romanian", "ron"),
    "ru": ("Russian", "rus"),
    "sk": ("Slovak", "slk"),
    "sl": ("Slovenian", "slv"),
    "sv": ("Swedish", "swe"),
    "th": ("Thai", "tha"),
    "tr": ("Turkish", "tur"),
    "uk": ("Ukrainian", "ukr"),
    "vi": ("Vietnamese", "vie"),
    "zh": ("Chinese", "zho"),
}


def language_name(code: str) -> str:
    """'de' -> 'German'; an unknown code raises with the list of known ones."""
    if code in LANGUAGES:
        return LANGUAGES[code][0]
    raise UnsupportedLanguageError(
        f"Unknown language code {code!r}; use an ISO 639-1 code: {', '.join(sorted(LANGUAGES))}."
    )


def language_token(tokenizer, code: str) -> str:
    """The token a multilingual tokenizer uses for `code`: 'de' -> 'de_DE' (mBART-50), '__de__' (M2M100),
    'deu_Latn' (NLLB). A code that already is one of the tokenizer's tokens is returned as it is."""
    specials = set(getattr(tokenizer, "additional_special_tokens", None) or [])
    specials |= set(getattr(tokenizer, "lang_code_to_id", None) or {})
    if code in specials:
        return code
    iso3 = LANGUAGES.get(code, ("", ""))[1]
    prefixes = (f"{code}_", f"{iso3}_") if iso3 else (f"{code}_",)
    candidates = sorted(s for s in specials if s.startswith(prefixes))
    if candidates:
        return candidates[0]
    raise UnsupportedLanguageError(
        f"This multilingual model has no language code for {code!r}. Its codes include: "
        f"{', '.join(sorted(specials)[:20])}..."
    )
