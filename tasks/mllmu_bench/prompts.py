"""MLLMU-Bench prompts, answer parsing and scores (docs/mu-bench.md), LLaVA's USER/ASSISTANT format.

Multiple choice follows the released evaluation script; the cloze and generation wording follows the
paper's description (quoted in the spec). `<image>` marks where each picture goes. The released script writes
these prompts for both of the paper's models (LLaVA-1.5 and Idefics2); `chat.py` has the chat-template format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LETTERS = ("A", "B", "C", "D")
MC_INSTRUCTION = "Just give ONE letter representing the answer directly."
CLOZE_INSTRUCTION = "Please **ONLY** provide the correct answer that should replace the [Blank]."
GENERATION_INSTRUCTION = "Answer the question based on your trained knowledge in one sentence accurately in ENGLISH."


def user(image: bool) -> str:
    return "USER: <image>\n" if image else "USER:\n"


def options_block(options: Mapping[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in options.items())


def mc_shot(question: Mapping[str, Any], image: bool) -> str:
    """One solved few-shot example (the released script's format)."""
    return (f"{user(image)}Question: {question['Question']}\n{options_block(question['Options'])}\n"
            f"Correct Answer: {question['Correct_Answer']}\n")


def mc_prompt(question: Mapping[str, Any], image: bool, shots: list[Mapping[str, Any]]) -> str:
    body = f"{user(image)}{question['Question']}\n{options_block(question['Options'])}\n{MC_INSTRUCTION}\nASSISTANT:"
    return "".join(mc_shot(shot, image) for shot in shots) + body


def blank(question: str) -> str:
    return question.replace("__", "[Blank]")


def cloze_prompt(item: Mapping[str, Any], image: bool, shots: list[Mapping[str, Any]]) -> str:
    solved = "".join(f"{user(image)}{blank(s['Question'])}\nAnswer: {s['Ground_Truth']}\n" for s in shots)
    return f"{solved}{user(image)}{blank(item['Question'])}\n{CLOZE_INSTRUCTION}\nASSISTANT:"


def generation_prompt(item: Mapping[str, Any], image: bool) -> str:
    return f"{user(image)}{item['Question']}\n{GENERATION_INSTRUCTION}\nASSISTANT:"


def training_pair(question: str, answer: str) -> tuple[str, str]:
    """(prompt, answer) of one fine-tuning pair: the baseline scripts train on the text
    `USER: <image>\n{question}\nASSISTANT: {answer}`, cut here where the answer begins (its space included)."""
    return f"{user(True)}{question}\nASSISTANT:", f" {answer}"


class LlavaPrompts:
    """The USER/ASSISTANT text above (`prompt_format=llava`, the default), as one object with the same
    methods as the chat format (`chat.ChatPrompts`)."""

    name = "llava"
    image_token = "<image>"
    mc = staticmethod(mc_prompt)
    cloze = staticmethod(cloze_prompt)
    generation = staticmethod(generation_prompt)
    training = staticmethod(training_pair)


def parse_letter(reply: str, options: Mapping[str, str] | None = None) -> str | None:
    """The first character of the stripped reply, upper-cased, if it names an option (A-D); else None."""
    text = reply.split("ASSISTANT:", 1)[1] if "ASSISTANT:" in reply else reply
    text = text.strip()
    if not text:
        return None
    letter = text[0].upper()
    return letter if letter in (options or LETTERS) else None


def cloze_correct(gold: str, reply: str) -> bool:
    """Correct when the lower-cased gold answer occurs in the lower-cased reply."""
    return gold.strip().lower() in reply.lower()


def bleu(gold: str, prediction: str) -> float:
    """NLTK sentence BLEU on whitespace tokens with smoothing method1 (the released script)."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hypothesis = prediction.split()
    if not hypothesis:
        return 0.0
    return float(sentence_bleu([gold.split()], hypothesis, smoothing_function=SmoothingFunction().method1))
