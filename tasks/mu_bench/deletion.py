"""MU-Bench deletion sets: index files `mubench/df/<data>.txt`, nested ratios, and where to find the files.

Each file lists 0-based training-row indices covering 10% of the training split; ratio r% takes the first
floor((r / 10) * N) lines, so smaller sets are prefixes of larger ones. The floor is computed exactly
(fractions), which equals upstream's `int(r / 10 * N)` on every shipped file and ratio (a test checks).
UCF101 instead ships one boolean mask per ratio (`ucf101/<r>.txt`), also accepted here.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from mu_eval.data import DATA_DIR_ENV, DataError

TRUE_WORDS = {"true", "1"}
FALSE_WORDS = {"false", "0"}


def read_index_file(path: str | os.PathLike) -> list[int]:
    """Indices, one per line (blank lines ignored); a clear error names the file and line on bad content."""
    indices: list[int] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            indices.append(int(float(text)) if "." in text or "e" in text else int(text))
        except ValueError:
            raise DataError(f"{path}, line {number}: not an index: {text!r}") from None
    if len(set(indices)) != len(indices):
        raise DataError(f"{path}: repeated indices")
    return indices


def read_mask_file(path: str | os.PathLike) -> list[int]:
    """Indices of the true entries of a boolean mask file (UCF101's per-ratio deletion masks)."""
    indices = []
    for position, word in enumerate(w.lower() for w in Path(path).read_text().split()):
        if word in TRUE_WORDS or word == "1.0":
            indices.append(position)
        elif word not in FALSE_WORDS and word != "0.0":
            raise DataError(f"{path}: entry {position} is not a boolean: {word!r}")
    return indices


def ratio_count(ratio: float, total: int) -> int:
    """floor((ratio / 10) * total), exact; ratio is a percentage in (0, 10]."""
    fraction = Fraction(str(ratio))
    if not 0 < fraction <= 10:
        raise DataError(f"deletion ratio {ratio} is outside (0, 10] percent (the files cover 10% of train)")
    return math.floor(fraction / 10 * total)


def deletion_indices(indices: list[int], ratio: float) -> list[int]:
    """The first floor((ratio / 10) * N) indices: nested deletion sets."""
    return indices[: ratio_count(ratio, len(indices))]


def ratio_names(ratio: float) -> list[str]:
    """File names a ratio may have in UCF101's mask folder: '2.0.txt' and '2.txt' both occur upstream."""
    value = float(ratio)
    names = [f"{value}.txt"]
    if value.is_integer():
        names.append(f"{int(value)}.txt")
    return names


def candidate_files(name: str, ratio: float, options: dict[str, Any]) -> list[Path]:
    """Where the index file for data `name` may be: `df_file`, then `df_dir`, then the data directory."""
    if options.get("df_file"):
        return [Path(str(options["df_file"])).expanduser()]
    roots = []
    if options.get("df_dir"):
        roots.append(Path(str(options["df_dir"])).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        base = Path(os.environ[DATA_DIR_ENV])
        roots += [base / "mubench" / "df", base / "mubench-df", base / "df"]
    candidates = []
    for root in roots:
        candidates.append(root / f"{name}.txt")
        candidates += [root / name / r for r in ratio_names(ratio)]
    return candidates


def load_forget_indices(name: str, ratio: float, options: dict[str, Any], train_size: int) -> tuple[list[int], str]:
    """The forget-set row indices for `name` at `ratio`, and the file they came from.

    A folder `<name>/<ratio>.txt` holds a boolean mask (UCF101); a file `<name>.txt` holds an index list.
    """
    looked = candidate_files(name, ratio, options)
    for path in looked:
        if not path.is_file():
            continue
        in_mask_folder = path.parent.name == name and not options.get("df_file")
        if in_mask_folder or _looks_like_mask(path):
            chosen = read_mask_file(path)
        else:
            chosen = deletion_indices(read_index_file(path), ratio)
        bad = [i for i in chosen if not 0 <= i < train_size]
        if bad:
            raise DataError(f"{path}: index {bad[0]} is outside the training split of {train_size} rows")
        return chosen, str(path)
    where = ", ".join(str(p) for p in looked) or "nowhere"
    raise DataError(
        f"MU-Bench deletion file for {name!r} not found; pass --task-args df_file=PATH or df_dir=DIR "
        f"(a copy of MU-Bench's mubench/df folder), or put it under $MU_EVAL_DATA_DIR/mubench/df; looked at: {where}"
    )


def _looks_like_mask(path: Path) -> bool:
    """True/False words (numpy's bool text format) mean a mask; numbers mean an index list."""
    head = path.read_text()[:400].split()[:-1] or path.read_text().split()
    return bool(head) and all(word.lower() in ("true", "false") for word in head)
