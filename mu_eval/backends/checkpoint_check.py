"""Checks on a local checkpoint folder before transformers reads it, and on what it loaded: a broken file is
named in one line, remote code is refused unless asked for, and weights that do not fit the architecture
(which transformers would fill with random values, with only a log message) stop the run."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from mu_eval.backend import BackendError

#: The JSON files transformers reads from a checkpoint folder; each, when present, must parse.
JSON_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json", "preprocessor_config.json", "processor_config.json")

#: What the libraries raise for a checkpoint they cannot use; anything else is a bug and keeps its traceback.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, TypeError, KeyError, ImportError,
                                                   RuntimeError, pickle.UnpicklingError, EOFError)
try:
    from safetensors import SafetensorError

    LIBRARY_ERRORS += (SafetensorError,)
except ImportError:  # pragma: no cover - safetensors comes with transformers
    pass


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except IsADirectoryError:
        raise BackendError(f"{path.name} in {path.parent} is a folder, not a file") from None
    except UnicodeDecodeError as error:
        raise BackendError(f"{path.name} in {path.parent} is not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise BackendError(f"{path.name} in {path.parent} is not valid JSON ({error.msg}, line {error.lineno} "
                           f"column {error.colno})") from None


def check_safetensors(path: Path) -> None:
    """Open the header of every safetensors file: truncated or foreign files are caught here, by name."""
    from safetensors import safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as handle:
                handle.keys()
        except LIBRARY_ERRORS as error:
            raise BackendError(f"{file.name} in {path} is not a readable safetensors file "
                               f"({str(error).strip() or type(error).__name__})") from None


def check_local_checkpoint(path: Path, args: Any) -> None:
    """A local folder: a config.json object with a model_type, parseable JSON files, readable safetensors
    headers; `revision` is a hub notion (refused rather than ignored); remote code only when asked for."""
    if not path.is_dir():
        raise BackendError(f"model path is a file, not a checkpoint folder: {path}")
    if not (path / "config.json").exists():
        raise BackendError(f"model path has no config.json (not a transformers checkpoint): {path}")
    if args.revision is not None:
        raise BackendError(f"--model-args revision={args.revision!r} applies to hub ids; {path} is a local folder "
                           "(check out the revision there instead)")
    for name in JSON_FILES:
        if (path / name).exists():
            data = read_json_file(path / name)
            if name == "config.json" and not isinstance(data, dict):
                raise BackendError(f"config.json in {path} is not a JSON object")
    config = read_json_file(path / "config.json")
    if "model_type" not in config:
        raise BackendError(f"config.json in {path} has no model_type (which architecture to build)")
    if config.get("auto_map") and not args.trust_remote_code:
        raise BackendError(f"{path} needs its own modelling code (auto_map in config.json), which is not run unless "
                           "you pass --model-args trust_remote_code=true after reading it")
    check_safetensors(path)


def check_loaded_weights(model: str, info: dict[str, Any]) -> None:
    """Weights the architecture needs but the files lack would be random: refuse them, naming a few."""
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise BackendError(f"the weights of {model!r} do not fit its architecture: {len(missing)} parameter(s) "
                           f"missing from the files ({shown}), which would be random")
