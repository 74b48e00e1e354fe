"""Public text as a relearning set (`relearn text_file=PATH`): documents read from a file, with its hash.

Relearning on text loosely related to the forget set (general medical text for WMDP-bio) tests whether
unlearning removed knowledge or only suppressed it. Documents become examples with an empty prompt and
the text as answer, as the MUSE and WMDP corpora are, so they are trained on as the forget documents are.
The report keeps the file's path, size and SHA-256, so two reports can tell whether they relearned on
the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu_eval.attack import AttackError
from mu_eval.data import DataError, read_local_file
from mu_eval.file_hashes import hash_file
from mu_eval.task import TextExample

#: `.txt` holds one document per line; the others are read by `mu_eval.data` and need a `text` field.
FORMATS = {".txt": "txt", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_FIELD = "text"


@dataclass(frozen=True)
class TextCorpus:
    """The documents of one file (blank ones dropped) and what identifies the file."""

    path: str
    format: str
    documents: tuple[str, ...]
    sha256: str
    n_blank_dropped: int = 0

    def examples(self) -> list[TextExample]:
        """Documents as training examples: no prompt, every token of the text is learned."""
        return [TextExample("", text) for text in self.documents]

    def describe(self) -> dict[str, Any]:
        """The report's `relearn_set` entry."""
        return {"source": "text_file", "path": self.path, "format": self.format, "n_documents": len(self.documents),
                "sha256": self.sha256, "n_blank_dropped": self.n_blank_dropped}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_rows(path: Path) -> list[Any]:
    """Rows through `mu_eval.data`, without the `datasets` progress bar (it would precede a one-line error)."""
    import datasets

    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return read_local_file(path)
    finally:
        if shown:
            datasets.enable_progress_bars()


def _texts_from_rows(rows: list[Any], where: str) -> list[Any]:
    texts = []
    for index, row in enumerate(rows):
        value = row.get(TEXT_FIELD) if isinstance(row, dict) else None
        if not isinstance(value, str):
            raise AttackError(f"{where}: row {index} has no {TEXT_FIELD!r} string field")
        texts.append(value)
    return texts


def read_text_file(path: str, attack: str = "relearn") -> TextCorpus:
    """Every non-blank document of `path`; a missing, unreadable, malformed or empty file is an AttackError
    (raised when the attack is created, before the model is loaded)."""
    where = f"attack {attack!r}: text_file {path}"
    file = Path(path).expanduser()
    if not file.is_file():
        raise AttackError(f"{where} does not exist or is not a file")
    kind = FORMATS.get(file.suffix.lower())
    if kind is None:
        raise AttackError(f"{where}: unknown format {file.suffix or '(no extension)'!r}; expected "
                          + ", ".join(FORMATS))
    try:
        with file.open("rb") as handle:
            head = handle.read(4096)
        if len(head) < 4096 and head.strip() in (b"", b"[]"):  # `datasets` fails on these obscurely
            raise AttackError(f"{where} holds no documents")
        if kind == "txt":
            texts = file.read_text(encoding="utf-8").splitlines()
        else:
            texts = _texts_from_rows(_read_rows(file), where)
    except (DataError, OSError, UnicodeDecodeError) as error:
        raise AttackError(f"{where} cannot be read: {_one_line(str(error))}") from error
    documents = tuple(text for text in texts if text.strip())
    if not documents:
        raise AttackError(f"{where} holds no documents")
    return TextCorpus(str(file.resolve()), kind, documents, hash_file(file), len(texts) - len(documents))
